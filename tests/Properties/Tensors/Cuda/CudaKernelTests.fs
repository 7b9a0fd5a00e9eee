/// Every kernel source compiles with NVRTC for the A100 (sm_80) and H100/H200 (sm_90) architectures,
/// and the cubin cache stores, reuses and repairs what NVRTC produced. Needs only libnvrtc, no GPU.
module Flows.Properties.Tensors.Cuda.CudaKernelTests

open System
open System.IO
open System.Text.RegularExpressions
open Xunit
open Flows.Tensors.Backend.Cuda

let private nvrtc () =
    match CudaProbe.nvrtc.Value with
    | Ok api -> api
    | Error reason -> failwith reason

// Flows.Functional's flow kernels, with the header the backend puts in front
let private flowSource () =
    use stream = typeof<Flows.Tensors.AdamConfig>.Assembly.GetManifestResourceStream "Flows.Kernels.flows.cu"
    use reader = new StreamReader(stream)
    CudaKernels.source "flows.cu" (reader.ReadToEnd())

let private isElf (bytes: byte[]) = bytes.Length > 4 && bytes[0] = 0x7Fuy && bytes[1] = byte 'E' && bytes[2] = byte 'L' && bytes[3] = byte 'F'

[<NvrtcFact>]
let ``Every kernel source compiles with NVRTC to a cubin for sm_80 and sm_90`` () =
    let api = nvrtc ()
    let sources = KernelSources.all.Force() @ [ flowSource () ]
    Assert.Equal(KernelSources.names.Length + 1, sources.Length)
    // NVRTC is thread-safe: the fourteen compiles (several seconds each on one core) run side by side
    let results =
        [| for arch in [ "sm_80"; "sm_90" ] do for source in sources -> arch, source |]
        |> Array.Parallel.map (fun (arch, source) -> arch, source.Name, KernelCache.compile api source (KernelCache.options arch))
    for arch, name, result in results do
        match result with
        | Ok cubin -> Assert.True(isElf cubin, $"{name} for {arch}: NVRTC returned no ELF cubin")
        | Error log -> failwith log

[<NvrtcFact>]
let ``A kernel that does not compile reports NVRTC's log with the file and line`` () =
    let broken = { Name = "broken.cu"; Text = "extern \"C\" __global__ void k(float* x) {\n  x[0] = undefined_name;\n}\n" }
    match KernelCache.compile (nvrtc ()) broken (KernelCache.options "sm_80") with
    | Ok _ -> failwith "an undefined identifier compiled"
    | Error message ->
        Assert.Contains("broken.cu", message)
        Assert.Contains("undefined_name", message)
        Assert.Contains("sm_80", message)

[<NvrtcFact>]
let ``Every kernel the CUDA tensor and the flow kernels launch is defined in the sources for each dtype it uses`` () =
    let text = String.Join("\n", KernelSources.all.Force() @ [ flowSource () ] |> List.map _.Text)
    // the instantiation macros define name_f32 / name_f64 (/ name_i32)
    let defined (kernel: string) (suffix: string) =
        let m = Regex.Match(text, $@"#define \w+\(S, T\)[^\n]*\n(?:[^\n]*\\\n)*?[^\n]*void {Regex.Escape kernel}_##S\(")
        let plain = Regex.IsMatch(text, $@"void {Regex.Escape kernel}_{suffix}\(")
        plain
        || (m.Success
            && (let macro = Regex.Match(m.Value, @"#define (\w+)").Groups[1].Value
                Regex.IsMatch(text, $@"\n{macro}\)|FOR_FLOATS\({macro}\)|FOR_ALL\({macro}\)")
                && (suffix <> "i32" || Regex.IsMatch(text, $@"FOR_ALL\({macro}\)"))))
    let floats = [ "unary"; "binary"; "where"; "reduce"; "arg_reduce"; "cumsum"; "solve_triangular"; "lu"; "bias_activation"; "activation_grad"; "affine_map"; "adam"; "rq_spline"; "rq_spline_backward"; "spline_knots"; "spline_knots_backward" ]
    let all = [ "fill"; "arange"; "strided_copy"; "triangle"; "gather"; "scatter_add"; "search_sorted"; "random" ]
    for k in floats do
        for s in [ "f32"; "f64" ] do Assert.True(defined k s, $"{k}_{s} is not defined")
    for k in all do
        for s in [ "f32"; "f64"; "i32" ] do Assert.True(defined k s, $"{k}_{s} is not defined")
    for a in [ "f32"; "f64"; "i32" ] do
        for b in [ "f32"; "f64"; "i32" ] do
            if a <> b then Assert.Matches($"void cast_{a}_{b}|CAST\\({a}, \\w+, {b},", text)

[<NvrtcFact>]
let ``The cubin cache compiles once, then reads the file, and recompiles a corrupt one`` () =
    let api = nvrtc ()
    let dir = Path.Combine(Path.GetTempPath(), "flows-cubin-" + Guid.NewGuid().ToString("N"))
    try
        let source = KernelSources.all.Force() |> List.find (fun s -> s.Name = "random.cu")
        let first = KernelCache.load api dir source "sm_80"
        let file = Assert.Single(Directory.GetFiles dir)
        Assert.EndsWith(KernelCache.key source.Text (KernelCache.options "sm_80") "sm_80" api.VersionText + ".cubin", file)
        let stamp = File.GetLastWriteTimeUtc file
        Assert.Equal<byte[]>(first, KernelCache.load api dir source "sm_80")
        Assert.Equal(stamp, File.GetLastWriteTimeUtc file)
        // a truncated file fails its embedded hash and is replaced by a fresh compile
        File.WriteAllBytes(file, (File.ReadAllBytes file)[.. 100])
        Assert.Equal<byte[]>(first, KernelCache.load api dir source "sm_80")
        Assert.Equal(first.Length + 32, (File.ReadAllBytes file).Length)
    finally
        Directory.Delete(dir, true)
