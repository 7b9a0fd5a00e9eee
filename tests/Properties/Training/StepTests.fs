/// The training loop's parts as pure functions: one gradient step against Adam's update computed
/// here, the roll-back of a non-finite step, and early stopping's verdicts on a scripted history.
module Flows.Properties.Training.StepTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Tensors
open Flows.Training

let private flow () = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ Elementwise.affine Dtype.Float64 2 ]
let private options = { TrainOptions.defaults with LearningRate = 0.1; Optimiser = Optimiser.Sgd(0.0, 0.0) }
let private batch = Tensor.ofArray([| 1.0; 2.0; -1.0; 0.5 |], [| 2; 2 |]), 1.0
let private flat (p: Params) = p.Values |> Array.collect _.toArray64()

// loss = Σ parameters² (gradient 2θ), or NaN when asked
let private squares (nan: bool) (p: Params) (_: Tensor) (_: Flow) =
    let s = p.Values |> Array.map (fun v -> v.square().sum()) |> Array.reduce (+)
    if nan then s * Double.NaN else s

[<Fact>]
let ``a finite step moves the parameters by the optimiser's update and keeps the flow it started from as the last finite`` () =
    let start = GradientStep.start (flow ())
    let before = flat start.Parameters
    let after, measured = GradientStep.run options (squares false) 0 true (fun () -> false) 0 batch start
    Assert.True(measured.Finite)
    Assert.Equal(Array.sumBy (fun v -> v * v) before, measured.Loss, 12)
    // plain SGD: θ − 0.1 · 2θ
    Array.iter2 (fun (b: float) (a: float) -> Assert.Equal(0.8 * b, a, 12)) before (flat after.Parameters)
    Assert.Equal<float[]>(flat after.Parameters, flat (Flow.parameters after.Flow))
    Assert.Equal(0, after.Bad)

[<Fact>]
let ``a non-finite step rolls back to the last finite flow and counts, and a finite step after it ends the run only later`` () =
    let start = GradientStep.start (flow ())
    let moved, _ = GradientStep.run options (squares false) 0 true (fun () -> false) 0 batch start
    let bad, measured = GradientStep.run options (squares true) 0 true (fun () -> false) 1 batch moved
    Assert.False(measured.Finite)
    Assert.Equal<float[]>(flat (Flow.parameters moved.LastFinite), flat bad.Parameters)
    Assert.Equal((1, 1, true), (bad.Bad, bad.Skipped, bad.RolledBack))
    // the finite step right after a roll-back only re-scores the kept parameters: the count stays
    let again, _ = GradientStep.run options (squares false) 0 true (fun () -> false) 2 batch bad
    Assert.Equal((1, false), (again.Bad, again.RolledBack))
    let clean, _ = GradientStep.run options (squares false) 0 true (fun () -> false) 3 batch again
    Assert.Equal(0, clean.Bad)

[<Fact>]
let ``early stopping keeps the best finite score and stops after patience checks without improvement`` () =
    let scores = [ 3.0; 2.0; Double.NaN; 2.5; 2.1; 2.2 ]
    let history = scores |> List.indexed |> List.fold (fun h (i, nll) -> EarlyStopping.record (10 * (i + 1)) $"model {i}" nll h) EarlyStopping.start
    Assert.Equal(Some("model 1", 2.0, 20), history.Best)
    Assert.Equal(4, history.SinceBest)
    Assert.Equal(None, EarlyStopping.verdict (Some 5) 60 history)
    match EarlyStopping.verdict (Some 4) 60 history with
    | Some(StopReason.EarlyStopped(60, 20), message) -> Assert.Contains("kept step 20", message)
    | other -> failwith $"expected an early stop at 60 keeping 20, got {other}"

[<Fact>]
let ``scores far above the best stop an exploding fit even without patience`` () =
    let history = [ 1.0; 9.0; 9.0; 9.0; 9.0; 9.0 ] |> List.indexed |> List.fold (fun h (i, nll) -> EarlyStopping.record (i + 1) i nll h) EarlyStopping.start
    Assert.Equal(5, history.FarAbove)
    match EarlyStopping.verdict None 6 history with
    | Some(StopReason.Exploded(6, 1), _) -> ()
    | other -> failwith $"expected an exploded stop keeping step 1, got {other}"
