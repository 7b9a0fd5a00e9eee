/// Cost of each spline kind as a transformer on a [512; 8] float32 batch with K = 8 bins on [−3, 3]:
/// forward, inverse, and forward with the gradient of its raw parameters (the training step's share);
/// then the knots from one spline's raw widths, and a whole training step of one rational-quadratic
/// coupling layer.
module SplineBench

open Flows
open Flows.Bijectors
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
        Timing.report $"spline.{name}.forward.512x8" (Timing.measure (fun () -> Transformer.forward spline x raw |> ignore) * 1e6) "us"
        Timing.report $"spline.{name}.inverse.512x8" (Timing.measure (fun () -> Transformer.inverse spline x raw |> ignore) * 1e6) "us"
        let grad () = Ad.grad (fun r -> let y, l = Transformer.forward spline x r in y.sum() + l.sum()) raw |> ignore
        Timing.report $"spline.{name}.forward_grad.512x8" (Timing.measure grad * 1e6) "us"
    // the knots of one spline's widths alone (two per spline call), with their gradient: the fused op
    // and the composite it replaces
    let raw = gen.normal([| 512; 8; 8 |], 0.0, 0.5)
    for name, knots in [ "knots", Spline.knots; "knots_composite", Spline.knotsComposite ] do
        Timing.report $"spline.{name}.512x8x8" (Timing.measure (fun () -> knots 3.0 1e-3 raw |> ignore) * 1e6) "us"
        let grad () = Ad.grad (fun r -> (knots 3.0 1e-3 r).sum()) raw |> ignore
        Timing.report $"spline.{name}.grad.512x8x8" (Timing.measure grad * 1e6) "us"
    // RQ-NSF (C) with 8 features, a 64-64 ReLU conditioner, K = 8 on [−3, 3], batch 512: the gradient
    // of the Gaussian negative log-likelihood with respect to every parameter, as Train.fit takes it
    let layer = SplineCoupling.neuralSpline gen Dtype.Float32 8 [ 64; 64 ] 8 3.0 (Coupling.Mask.Alternating false)
    let data = gen.normal([| 512; 8 |], 0.0, 1.5)
    // away from the identity the layer starts as
    let values = layer.Params.Values |> Array.map (fun v -> v + gen.normal(v.shape, 0.0, 0.05))
    let nll (vs: Tensor[]) =
        let z, logDet = layer.Inverse (Bijector.withBuffers (layer.Params.WithValues vs) layer) Context.none data
        (z * z).sum() * 0.5 - logDet.sum()
    Timing.report "spline.rq.coupling_train_step.512x8" (Timing.measure (fun () -> Ad.fgradNReusing nll values |> ignore) * 1e6) "us"
