/// The kernel registry: a kernel registered from outside Flows.Tensors runs on the CPU backend
/// with the values and gradients of its composed definition, a missing one is an error naming the
/// kernel and the backend, and the flow kernels of Flows.Functional are there for both backends.
module Flows.Properties.Tensors.KernelRegistryTests

open System
open Xunit
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

type private ScaleShift = RawTensor -> RawTensor -> float -> RawTensor

// a·x + b on CPU arrays, the way a library outside Flows.Tensors writes a kernel
let private scaleShiftCpu : ScaleShift =
    fun x b a ->
        let run (xs: 'T[]) (bs: 'T[]) (f: 'T -> 'T -> 'T) =
            let r = CpuKernels.rent<'T> xs.Length
            for i in 0 .. xs.Length - 1 do r[i] <- f xs[i] bs[i]
            CpuKernels.tensor r x.Shape
        match x.Dtype with
        | Dtype.Float32 -> run (CpuKernels.elements "scaleShift" x) (CpuKernels.elements "scaleShift" b) (fun v w -> float32 a * v + w)
        | _ -> run (CpuKernels.elements "scaleShift" x) (CpuKernels.elements "scaleShift" b) (fun v w -> a * v + w)

let private scaleShift (a: float) (x: Tensor) (b: Tensor) =
    Tensor.custom1([| x; b |], (fun r -> Kernels.find<ScaleShift> "test.scaleShift" r[0].Device r[0] r[1] a),
                   fun _ _ adj needed -> [| (if needed[0] then adj * a else null); (if needed[1] then adj else null) |])

[<Fact>]
let ``A kernel registered from outside Flows.Tensors gives its composed definition's values and gradients`` () =
    Kernels.register "test.scaleShift" "cpu" scaleShiftCpu
    let g = Generator 4UL
    for dtype in [ Dtype.Float32; Dtype.Float64 ] do
        let x, b = g.normal([| 37; 5 |], dtype = dtype), g.normal([| 37; 5 |], dtype = dtype)
        Assert.Equal<float[]>((x * 2.5 + b).toArray64(), (scaleShift 2.5 x b).toArray64())
        let loss (f: Tensor -> Tensor -> Tensor) (t: Tensor[]) = (f t[0] t[1] * t[0]).sum()
        let fused = Ad.gradN (loss (scaleShift 2.5)) [| x; b |]
        let composed = Ad.gradN (loss (fun x b -> x * 2.5 + b)) [| x; b |]
        for i in 0 .. 1 do Assert.Equal<float[]>(composed[i].toArray64(), fused[i].toArray64())

[<Fact>]
let ``A kernel with no implementation for a backend is an error naming the kernel and the backend`` () =
    Kernels.register "test.cpuOnly" "cpu" scaleShiftCpu
    let e = Assert.Throws<InvalidOperationException>(fun () -> Kernels.find<ScaleShift> "test.cpuOnly" (Device.Cuda 1) |> ignore)
    Assert.Contains("test.cpuOnly", e.Message)
    Assert.Contains("cuda backend", e.Message)
    Assert.Contains("registered for cpu", e.Message)
    let none = Assert.Throws<InvalidOperationException>(fun () -> Kernels.find<ScaleShift> "test.nowhere" Device.Cpu |> ignore)
    Assert.Contains("test.nowhere", none.Message)
    Assert.Contains("cpu backend", none.Message)
    let wrongType = Assert.Throws<InvalidOperationException>(fun () -> Kernels.find<RawTensor -> RawTensor> "test.cpuOnly" Device.Cpu |> ignore)
    Assert.Contains("test.cpuOnly", wrongType.Message)
    Assert.Throws<ArgumentException>(fun () -> Kernels.register "test.tpu" "tpu" scaleShiftCpu) |> ignore

[<Fact>]
let ``The flow kernels are registered for both backends by their first use, without opening a device`` () =
    let x = Tensor.ones [| 2; 3 |]
    Tensor.affineMap(x, x, x, false) |> ignore
    for name in [ "rationalQuadratic"; "rationalQuadraticBackward"; "splineKnots"; "splineKnotsBackward" ] do
        Assert.NotNull(Kernels.find<obj> name (Device.Cuda 0))
    Assert.NotNull(Kernels.find<RawTensor -> RawTensor -> RawTensor -> bool -> RawTensor> "affineMap" (Device.Cuda 0))
    Assert.NotNull(Kernels.find<obj> "adamStep" Device.Cpu)
