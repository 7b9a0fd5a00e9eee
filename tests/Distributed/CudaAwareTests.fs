/// CUDA-aware MPI: the library's answer is what OpenMPI's own ompi_info reports, the override wins,
/// and on the CUDA emulator (whose device pointers are host addresses, so MPI can read them) handing
/// device buffers to MPI trains the very parameters that staging through host memory trains.
module Flows.Distributed.Tests.CudaAwareTests

open System
open System.Diagnostics
open System.IO
open Xunit
open Flows.Distributed.Tests.Launcher

/// The CUDA emulator's libraries, built beside the tests by tests/CudaEmulator's Makefile.
let private emulator = Path.Combine(AppContext.BaseDirectory, "cuda-emulator")

/// A fact that needs mpirun and the CUDA emulator: skipped with the reason when either is missing.
type EmulatorMpiFactAttribute() as this =
    inherit MpiFactAttribute()
    do
        if isNull this.Skip && not (File.Exists(Path.Combine(emulator, "libcuda.so.1"))) then
            this.Skip <- $"NOT RUN: the CUDA emulator was not built into {emulator} (the build runs make with g++)"

// What the emulated cuda:0 needs in every rank's environment (the kernel cache is shared by the runs).
let private onEmulator (cudaAware: string) =
    [ "FLOWS_CUDA_PATH", emulator
      "FLOWS_EMU_MEMORY_MB", "256"
      "FLOWS_CUBIN_CACHE", Path.Combine(emulator, "cache")
      "FLOWS_MPI_CUDA_AWARE", cudaAware ]

// "true" or "false" after `label` in rank 0's first line.
let private flag (label: string) (output: string) =
    let at = output.IndexOf(label: string)
    Assert.True(at >= 0, $"no '{label}' in: {output}")
    output.Substring(at + label.Length).StartsWith "True"

// OpenMPI's own report of its run-time CUDA support, which MPIX_Query_cuda_support returns.
let private ompiInfoCudaSupport () =
    let start = ProcessStartInfo("ompi_info", "--parsable --all", RedirectStandardOutput = true)
    use p = Process.Start start
    let text = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    let key = "mca:opal:base:param:opal_cuda_support:value:"
    let line = text.Split('\n') |> Array.find (fun l -> l.StartsWith key)
    line.Substring(key.Length).Trim() = "true"

[<MpiFact>]
let ``CUDA awareness is what ompi_info reports unless FLOWS_MPI_CUDA_AWARE forces it`` () =
    let folder = freshFolder ()
    try
        let detect value = runWith [ "FLOWS_MPI_CUDA_AWARE", value ] "Worker.dll" 1 [ "--out"; folder; "--steps"; "1" ]
        let code, auto = detect ""
        Assert.True((code = 0), auto)
        Assert.Equal(ompiInfoCudaSupport (), flag "CUDA-aware MPI: " auto)
        Assert.Contains("MPIX_Query_cuda_support() = ", auto)
        for value, expected in [ "1", true; "0", false ] do
            let code, forced = detect value
            Assert.True((code = 0), forced)
            Assert.Equal(expected, flag "CUDA-aware MPI: " forced)
            Assert.Contains("forced by FLOWS_MPI_CUDA_AWARE", forced)
        // a CPU model's buffers are host memory whatever MPI is
        Assert.False(flag "device buffers to MPI: " (snd (detect "1")))
        let code, bad = detect "maybe"
        Assert.NotEqual(0, code)
        Assert.Contains("FLOWS_MPI_CUDA_AWARE must be 1", bad)
    finally
        Directory.Delete(folder, true)

[<EmulatorMpiFact>]
let ``on the emulated GPU two ranks give MPI device buffers and train the staged parameters bit for bit`` () =
    let staged, direct = freshFolder (), freshFolder ()
    try
        let train cudaAware folder =
            let code, output = runWith (onEmulator cudaAware) "Worker.dll" 2 [ "--out"; folder; "--device"; "cuda"; "--steps"; "4" ]
            Assert.True((code = 0), output)
            output
        Assert.False(flag "device buffers to MPI: " (train "0" staged))
        Assert.True(flag "device buffers to MPI: " (train "1" direct))
        let read folder name = File.ReadAllLines(Path.Combine(folder, name)) |> Array.map (fun v -> Double.Parse(v, Globalization.CultureInfo.InvariantCulture))
        let a, b = read staged "params.txt", read direct "params.txt"
        Assert.Equal(a.Length, b.Length)
        for i in 0 .. a.Length - 1 do
            Assert.True(BitConverter.DoubleToInt64Bits a[i] = BitConverter.DoubleToInt64Bits b[i], $"parameter {i}: staged {a[i]:R}, device buffers {b[i]:R}")
        // and the steps moved the parameters (both runs start from the same ones)
        Assert.Equal<float[]>(read staged "initial.txt", read direct "initial.txt")
        let moved = Array.map2 (fun x y -> abs (x - y)) a (read staged "initial.txt") |> Array.max
        Assert.True(moved > 1e-3, $"the largest parameter change in 4 steps is {moved}")
    finally
        for f in [ staged; direct ] do Directory.Delete(f, true)

[<EmulatorMpiFact>]
let ``flows train --device cuda under two ranks says how gradients travel and trains the same model either way`` () =
    let folder = freshFolder ()
    try
        let data = Path.Combine(folder, "table.csv")
        let random = Random 11
        File.WriteAllLines(data, [| yield "a,b"; for _ in 1 .. 401 -> let a = random.NextDouble() in FormattableString.Invariant $"{a},{a * a + 0.1 * random.NextDouble()}" |])
        let train cudaAware =
            let model = Path.Combine(folder, $"model-{cudaAware}")
            let code, output =
                runWith (onEmulator cudaAware) "flows.dll" 2 [ "train"; "--data"; data; "--out"; model; "--steps"; "10"; "--flow"; "realnvp"; "--device"; "cuda" ]
            Assert.True((code = 0), output)
            output, Flows.CSharp.DensityModel.Load model
        let stagedOutput, staged = train "0"
        let directOutput, direct = train "1"
        Assert.Contains("on cuda:0; gradients are staged through host memory (forced by FLOWS_MPI_CUDA_AWARE)", stagedOutput)
        Assert.Contains("on cuda:0; gradients go to MPI as device buffers (forced by FLOWS_MPI_CUDA_AWARE)", directOutput)
        let rows = array2D [ [ 0.1f; 0.0f ]; [ 0.5f; 0.3f ]; [ 0.9f; 0.8f ] ]
        Assert.Equal<float32[]>(staged.LogProb rows, direct.LogProb rows)
    finally
        Directory.Delete(folder, true)
