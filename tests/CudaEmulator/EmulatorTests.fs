/// The CUDA backend run end to end on the emulator: the whole parity suite (every op with its
/// gradients, every catalogue bijector) against the CPU, device transfers, device errors, the
/// out-of-memory message and a short training run that must follow the CPU's losses.
module Flows.CudaEmulator.EmulatorTests

open System
open Xunit
open Flows.Data
open Flows.Tensors
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
        let step = CudaBench.stepper (CudaBench.onDevice device (CudaBench.twoMoonsFlow ()))
        let batch = (Toy.twoMoons (Generator 7UL) 256 Dtype.Float32).moveTo device
        Array.init 30 (fun _ -> step batch)
    let cpu, emulated = losses Device.Cpu, losses gpu
    // float32 sums in another order drift by rounding only; a wrong gradient would leave the trajectory
    for i in 0 .. cpu.Length - 1 do
        Assert.True(abs (cpu[i] - emulated[i]) <= 1e-4 * (1.0 + abs cpu[i]), $"step {i}: cpu {cpu[i]}, device {emulated[i]}")
    Assert.True(cpu[29] < cpu[0], "the loss went down on the CPU")
