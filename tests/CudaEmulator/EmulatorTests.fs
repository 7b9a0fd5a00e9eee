/// The CUDA backend run end to end on the emulator: the whole parity suite (every op with its
/// gradients, every catalogue bijector) against the CPU, device transfers, device errors, the
/// out-of-memory message, and flows moved to the device that must sample and train as on the CPU.
module Flows.CudaEmulator.EmulatorTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cuda
open Flows.Training
open Flows.CudaCheck

let private gpu = Device.Cuda 0

[<EmulatorFact>]
let ``Every op and every catalogue bijector through the CUDA backend matches the CPU within the float32 tolerance`` () =
    let outcomes = Parity.runAll gpu
    let failed = outcomes |> List.filter (fun o -> not o.Passed)
    if not failed.IsEmpty then
        failwith (String.Join("\n", failed |> List.map (fun o -> $"{o.Name}: {o.Detail}")))
    // the suite covers every op and every catalogue entry, and a case that silently ran on the CPU would differ by exactly 0 everywhere
    Assert.Equal(Parity.opCases.Length + Parity.bijectorCases.Length, outcomes.Length)
    Assert.True(outcomes |> List.exists (fun o -> o.MaxError > 0.0))

[<EmulatorFact>]
let ``Tensors go to the device and back bit for bit, in every dtype and for empty shapes`` () =
    let g = Generator 21UL
    let floats = g.normal([| 3; 7 |])
    let doubles = g.normal([| 5 |], dtype = Dtype.Float64)
    let ints = g.integers([| 2; 2; 3 |], -50, 50)
    for t in [ floats; doubles; ints; Tensor.zeros([| 0; 4 |]) ] do
        let there = t.moveTo gpu
        Assert.Equal(gpu, there.device)
        Assert.Equal<int[]>(t.shape, there.shape)
        Assert.Equal(t.dtype, there.dtype)
        Assert.Equal<float[]>(t.toArray64(), (there.moveTo Device.Cpu).toArray64())

[<EmulatorFact>]
let ``An op mixing the device with the CPU is an error naming both devices`` () =
    let a = Tensor.ones([| 3 |], device = gpu)
    let b = Tensor.ones([| 3 |])
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> (a + b) |> ignore)
    Assert.Contains("cuda:0", e.Message)
    Assert.Contains("cpu", e.Message)

[<EmulatorFact>]
let ``Asking for more device memory than there is names the op, the request and what is in use`` () =
    let held = Tensor.ones([| 1024; 1024 |], device = gpu) // 4 MiB in use while the request fails
    let count = (Emulator.MemoryMiB + 1) * 1024 * 1024 / 4
    let e = Assert.ThrowsAny<Exception>(fun () -> Tensor.zeros([| count |], device = gpu) |> ignore)
    Assert.Contains("cuda:0 is out of memory", e.Message)
    Assert.Contains($"asked for {int64 count * 4L} bytes", e.Message)
    Assert.Contains($"[{count}]", e.Message)
    // the failure left the device usable
    Assert.Equal(1024.0f * 1024.0f, (held.sum().moveTo Device.Cpu).toScalar() |> float32)

[<EmulatorFact>]
let ``Thirty Adam steps of the two-moons model on the device follow the CPU's losses`` () =
    let losses (device: Device) =
        let step = CudaBench.stepper (Flow.moveTo device (CudaBench.twoMoonsFlow ()))
        let batch = (Toy.twoMoons (Generator 7UL) 256 Dtype.Float32).moveTo device
        Array.init 30 (fun _ -> step batch)
    let cpu, emulated = losses Device.Cpu, losses gpu
    // float32 sums in another order drift by rounding only; a wrong gradient would leave the trajectory
    for i in 0 .. cpu.Length - 1 do
        Assert.True(abs (cpu[i] - emulated[i]) <= 1e-4 * (1.0 + abs cpu[i]), $"step {i}: cpu {cpu[i]}, device {emulated[i]}")
    Assert.True(cpu[29] < cpu[0], "the loss went down on the CPU")

// A small spline flow with a learnable Gaussian-mixture base: couplings, MADE masks, permutations
// and a base with parameters all have to follow the flow to the device.
let private smallFlow () =
    let gen = Generator 77UL
    let layers =
        [ SplineCoupling.neuralSpline gen Dtype.Float32 2 [ 16 ] 4 3.0 (Coupling.Mask.Half false)
          Permute.swap 2
          Autoregressive.maf gen Dtype.Float32 2 [ 16 ] Order.Natural ]
    Flow.create (Distribution.gaussianMixture (Tensor.ofArray([| -1.0f; 0.0f; 1.0f; 0.5f |], [| 2; 2 |])) 1.0) layers

let private close (what: string) (tolerance: float) (cpu: float[]) (device: float[]) =
    Assert.Equal(cpu.Length, device.Length)
    for i in 0 .. cpu.Length - 1 do
        Assert.True(abs (cpu[i] - device[i]) <= tolerance * (1.0 + abs cpu[i]), $"{what} [{i}]: cpu {cpu[i]}, device {device[i]}")

[<EmulatorFact>]
let ``A flow moved to the device samples the CPU's points from the same seed and scores them alike`` () =
    let flow = smallFlow ()
    let moved = Flow.moveTo gpu flow
    Assert.Equal(gpu, moved.Base.Device)
    let x, logq = Flow.sampleAndLogProb Context.none (Generator 5UL) 300 flow
    let xd, logqd = Flow.sampleAndLogProb Context.none (Generator 5UL) 300 moved
    Assert.Equal(gpu, xd.device)
    close "samples" 1e-4 (x.toArray64()) ((xd.moveTo Device.Cpu).toArray64())
    close "log q" 1e-4 (logq.toArray64()) ((logqd.moveTo Device.Cpu).toArray64())

[<EmulatorFact>]
let ``Train.fit on the device follows the CPU, by maximum likelihood on a data set and by reverse KL`` () =
    let options = { TrainOptions.defaults with Steps = 25; BatchSize = 128; LearningRate = 3e-3; Seed = 9UL }
    let data = Toy.twoMoons (Generator 3UL) 1000 Dtype.Float32
    let run (device: Device) (objective: Objective) =
        let flow, report = Train.fit options objective (Flow.moveTo device (smallFlow ())) |> Train.result
        Assert.Equal(device, (Flow.parameters flow).Values[0].device)
        report.Losses
    let forward d = run d (Objective.ForwardKl(DataSource.Dataset(data.moveTo d)))
    let reverse d = run d (Objective.ReverseKl Targets.twoMoons)
    close "forward-KL losses" 1e-4 (forward Device.Cpu) (forward gpu)
    close "reverse-KL losses" 1e-4 (reverse Device.Cpu) (reverse gpu)

[<EmulatorFact>]
let ``The C# facade fits, scores, samples and saves a model on the device as on the CPU`` () =
    let data = Array2D.init 400 2 (fun i j -> let t = float32 i * 0.05f in if j = 0 then sin t else cos t + 0.1f * float32 (i % 7))
    let options = Flows.CSharp.FitOptions(Steps = 20, BatchSize = 100, LearningRate = 1e-2, ValidationFraction = 0.2)
    let build () = Flows.CSharp.DensityModel.CreateNeuralSpline(2, layers = 2, hidden = 8, seed = 3UL)
    let onCpu = build().Fit(data, options)
    let onGpu = build().To("cuda:0").Fit(data, options)
    Assert.Equal("cuda:0", onGpu.Device)
    close "final loss" 1e-4 [| onCpu.LastFit.FinalLoss |] [| onGpu.LastFit.FinalLoss |]
    close "log p" 1e-4 (onCpu.LogProb(data) |> Array.map float) (onGpu.LogProb(data) |> Array.map float)
    close "samples" 1e-4 (onCpu.Sample(50, 4UL) |> Seq.cast<float32> |> Seq.map float |> Array.ofSeq) (onGpu.Sample(50, 4UL) |> Seq.cast<float32> |> Seq.map float |> Array.ofSeq)
    // saved from the device, loaded on the CPU: the same model
    let folder = IO.Path.Combine(IO.Path.GetTempPath(), $"flows-emulated-{Guid.NewGuid():N}")
    try
        onGpu.Save folder
        let loaded = Flows.CSharp.DensityModel.Load folder
        Assert.Equal("cpu", loaded.Device)
        // the weights came back bit for bit: the same as moving the fitted model to the CPU
        Assert.Equal<float32[]>(onGpu.To("cpu").LogProb(data), loaded.LogProb(data))
    finally
        if IO.Directory.Exists folder then IO.Directory.Delete(folder, true)

[<EmulatorFact>]
let ``Disposing a model on the device returns its memory now and keeps what a live model shares`` () =
    let data = Array2D.init 300 3 (fun i j -> float32 (sin (float (i * (j + 1)) * 0.1)))
    let options = Flows.CSharp.FitOptions(Steps = 3, BatchSize = 100, ValidationFraction = 0.0, GaussianFloor = false)
    let built = Flows.CSharp.DensityModel.CreateMaf(3, layers = 2, hidden = 64, seed = 1UL).To("cuda:0")
    let fitted = built.Fit(data, options)
    let expected = fitted.LogProb(data)
    let parameterBytes = int64 built.ParameterCount * 4L
    // intermediates the program dropped count as in use until finalised: collect them first
    let inUse () =
        GC.Collect()
        GC.WaitForPendingFinalizers()
        (Memory.device gpu).InUse
    let before = inUse ()
    built.Dispose()
    let afterBuilt = inUse ()
    // the fitted model shares the built one's masks: they stay, and it scores as before
    Assert.Equal<float32[]>(expected, fitted.LogProb(data))
    Assert.Throws<ObjectDisposedException>(fun () -> built.LogProb(data) |> ignore) |> ignore
    fitted.Dispose()
    let afterFitted = inUse ()
    // the built model's own parameters (not shared once fitted) came back at once, then the rest with the fitted one
    Assert.True(before - afterBuilt >= parameterBytes, $"disposing the built model released {before - afterBuilt} bytes; its parameters take {parameterBytes}")
    Assert.True(afterBuilt - afterFitted >= parameterBytes, $"disposing the fitted model released {afterBuilt - afterFitted} bytes")
    fitted.Dispose() // twice is harmless

[<EmulatorFact>]
let ``Tensors larger than one grid take several grid-stride rounds, and eight dimensions is the most a strided kernel takes`` () =
    // 65,536 blocks of 256 threads cover 16,777,216 elements per round: 20 million need a second round
    let n = 20_000_000
    let x = Tensor.arange(n, Dtype.Float32) * 1e-6
    let y = (x.moveTo gpu * 2.0 + 1.0).moveTo Device.Cpu
    let expected = (x * 2.0 + 1.0).toArray32()
    let got = y.toArray32()
    for i in [ 0; 16_777_215; 16_777_216; 16_777_217; n - 1 ] do
        Assert.Equal(expected[i], got[i])
    let eight = Tensor.ones(Array.create 8 2).moveTo gpu
    Assert.Equal(256.0, (eight.permute [| 7; 6; 5; 4; 3; 2; 1; 0 |]).sum().toScalar())
    let nine = Tensor.ones(Array.create 9 2).moveTo gpu
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> nine.permute [| 8; 7; 6; 5; 4; 3; 2; 1; 0 |] |> ignore)
    Assert.Contains("up to 8 dimensions", e.Message)

[<EmulatorFact>]
let ``Asking for a device the driver does not have names it and how many there are`` () =
    let e = Assert.ThrowsAny<Exception>(fun () -> Tensor.zeros([| 2 |], device = Device.Cuda 1) |> ignore)
    Assert.Contains("cuda:1 does not exist", e.Message)
    Assert.Contains("1 CUDA device(s)", e.Message)
    // cuda:0 is unaffected
    Assert.Equal<float32[]>([| 0.0f; 0.0f |], Tensor.zeros([| 2 |], device = gpu).toArray32())

[<EmulatorFact>]
let ``Training hands out more than the device's memory and stays within it, because dropped tensors come back to the pool`` () =
    let before = Memory.device gpu
    let step = CudaBench.stepper (Flow.moveTo gpu (CudaBench.twoMoonsFlow ()))
    let batch = (Toy.twoMoons (Generator 7UL) 512 Dtype.Float32).moveTo gpu
    let losses = Array.init 200 (fun _ -> step batch)
    let after = Memory.device gpu
    let capacity = int64 Emulator.MemoryMiB * 1024L * 1024L
    Assert.True(after.Rented - before.Rented > capacity, $"rented {after.Rented - before.Rented} bytes in 200 steps")
    Assert.True(after.InUse + after.Cached <= capacity)
    Assert.True(Array.forall Double.IsFinite losses)
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> Memory.device Device.Cpu |> ignore)
    Assert.Contains("no device memory pool", e.Message)

// a·x + b, registered from this assembly for both backends: CUDA C through the backend's kernel cache
type private ScaleShift = RawTensor -> RawTensor -> float -> RawTensor

let private scaleShiftSource =
    lazy
        (CudaKernels.source "test-scale-shift.cu"
            "#define SCALE_SHIFT(S, T) \\\nextern \"C\" __global__ void scale_shift_##S(i64 n, double a, const T* x, const T* b, T* r) { \\\n    GRID_STRIDE(i, n) r[i] = (T)a * x[i] + b[i]; }\nFOR_FLOATS(SCALE_SHIFT)\n")

[<EmulatorFact>]
let ``A kernel registered from outside Flows.Tensors runs on the device as its composed definition does on the CPU`` () =
    let cuda : ScaleShift =
        fun x b a ->
            let r = CudaKernels.empty x x.Shape x.Dtype
            CudaKernels.launch x (scaleShiftSource.Force()) ("scale_shift_" + CudaKernels.suffix x.Dtype) (int64 x.Numel)
                [ KernelArg.Long(int64 x.Numel); KernelArg.Double a
                  KernelArg.Ptr(CudaKernels.pointer x); KernelArg.Ptr(CudaKernels.pointer b)
                  KernelArg.Ptr(CudaKernels.pointer r) ]
            r
    Kernels.register "test.scaleShift.device" "cuda" cuda
    let g = Generator 8UL
    for dtype in [ Dtype.Float32; Dtype.Float64 ] do
        let x, b = g.normal([| 300; 7 |], dtype = dtype), g.normal([| 300; 7 |], dtype = dtype)
        let onDevice =
            Tensor.custom1([| x.moveTo gpu; b.moveTo gpu |],
                           (fun r -> Kernels.find<ScaleShift> "test.scaleShift.device" r[0].Device r[0] r[1] -1.5),
                           fun _ _ adj _ -> [| adj * -1.5; adj |])
        Assert.Equal(gpu, onDevice.device)
        Assert.Equal<float[]>((x * -1.5 + b).toArray64(), (onDevice.moveTo Device.Cpu).toArray64())
    // registered for the device only: on the CPU the error names the kernel and the backend
    let e = Assert.Throws<InvalidOperationException>(fun () -> Kernels.find<ScaleShift> "test.scaleShift.device" Device.Cpu |> ignore)
    Assert.Contains("test.scaleShift.device", e.Message)
    Assert.Contains("cpu backend", e.Message)
