/// Cost of each spline kind as a transformer on a [512; 8] float32 batch with K = 8 bins on [−3, 3]:
/// forward, inverse, and forward with the gradient of its raw parameters (the training step's share).
module SplineBench

open Flows.Tensors
open Flows.Transformers

/// Prints microseconds per call for every kind and direction.
let run () =
    let gen = Generator 5UL
    let x = gen.normal([| 512; 8 |], 0.0, 1.5)
    for kind in SplineKind.all do
        let spline = SplineKind.transformer 8 3.0 kind
        let raw = gen.normal([| 512; 8; spline.ParameterCount |], 0.0, 0.5)
        let name = SplineKind.name kind
        Timing.report $"spline.{name}.forward.512x8" (Timing.measure (fun () -> spline.Forward x raw |> ignore) * 1e6) "us"
        Timing.report $"spline.{name}.inverse.512x8" (Timing.measure (fun () -> spline.Inverse x raw |> ignore) * 1e6) "us"
        let grad () = Ad.grad (fun r -> let y, l = spline.Forward x r in y.sum() + l.sum()) raw |> ignore
        Timing.report $"spline.{name}.forward_grad.512x8" (Timing.measure grad * 1e6) "us"
