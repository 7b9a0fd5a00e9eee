/// Spline knots from unnormalised bin sizes as one fused op (Spline.knots: RawTensor.SplineKnots
/// forward, SplineKnotsBackward backward) against its definition composed from tensor ops
/// (Spline.knotsComposite) and against the formula summed in plain float64: values to 1e-12, first
/// derivatives against autodiff of the composite and central differences, second
/// derivatives (the composite fallback) against both, for K = 1–64 and raw sizes up to ±1e4.
module Flows.Properties.Bijectors.FusedKnotsTests

open System
open Xunit
open Flows.Tensors
open Flows.Transformers
open Flows.Laws
open Flows.Properties.Support

let private rows, features = 3, 2

/// Raw sizes, bin count, bound and least size of one case.
type private Case = { Raw: Tensor; Bins: int; Bound: float; MinSize: float }

// K = 1–64 bins on [−B, B], B in 0.5–5, least size 0 or below 1/K; raw N(0, scale²), with one row
// all equal and one row of ±1e4 (a softmax that saturates to one bin)
let private draw (seed: int) (scale: float) =
    let g = Draw.generator seed
    let bins = 1 + seed % 64
    let bound = 0.5 + 4.5 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
    let minSize = [| 0.0; 1e-3; 0.5 / float bins |][seed % 3]
    let values = (Draw.normal g [| rows; features; bins |] * scale).toArray64()
    Array.fill values 0 bins 0.7
    for j in 0 .. bins - 1 do values[bins + j] <- if (seed + j) % 3 = 0 then 1e4 else -1e4
    { Raw = Tensor.ofArray(values, [| rows; features; bins |]); Bins = bins; Bound = bound; MinSize = minSize }

// The knots of every row by the formula, in plain float64 with the row maximum subtracted.
let private byFormula (c: Case) =
    let raw = c.Raw.toArray64()
    let k = c.Bins
    [| for at in 0 .. k .. raw.Length - 1 do
           let row = raw[at .. at + k - 1]
           let m = Array.max row
           let total = row |> Array.sumBy (fun a -> exp (a - m))
           let sizes = row |> Array.map (fun a -> c.MinSize + (1.0 - float k * c.MinSize) * exp (a - m) / total)
           yield -c.Bound
           for i in 1 .. k - 1 do yield -c.Bound + 2.0 * c.Bound * Array.sum sizes[.. i - 1]
           yield c.Bound |]

let private fused (c: Case) (xs: Tensor[]) = [| Spline.knots c.Bound c.MinSize xs[0] |]
let private composite (c: Case) (xs: Tensor[]) = [| Spline.knotsComposite c.Bound c.MinSize xs[0] |]

// Not bit for bit: the fused op repeats the composite's CPU arithmetic, but System.Numerics.Tensors'
// vectorised exp can differ by an ulp between JIT tiers, so the composite's own last bit varies.
[<Fact>]
let ``fused knots equal the composite to 1e-12 in float64, to float32 precision in float32, and the formula`` () =
    Gens.check 64 Gens.seed (fun seed ->
        let scale = [| 0.0; 1.0; 10.0; 1e4 |][seed % 4]
        let c = draw seed scale
        let actual = Spline.knots c.Bound c.MinSize c.Raw
        Close.tensors $"float64 knots, K = {c.Bins}" { Abs = 1e-12; Rel = 1e-12 } (Spline.knotsComposite c.Bound c.MinSize c.Raw) actual
        Close.values $"knots by the formula, K = {c.Bins}" { Abs = 1e-12; Rel = 1e-12 } [| rows; features; c.Bins + 1 |] (byFormula c) actual
        let raw32 = c.Raw.cast Dtype.Float32
        Close.tensors $"float32 knots, K = {c.Bins}" Tolerance.float32 (Spline.knotsComposite c.Bound c.MinSize raw32) (Spline.knots c.Bound c.MinSize raw32))

[<Fact>]
let ``the fused knots' backward equals autodiff of the composite, also for saturated and equal sizes`` () =
    Gens.check 64 Gens.seed (fun seed ->
        let scale = [| 0.0; 1.0; 10.0; 1e4 |][seed % 4]
        let c = draw seed scale
        let g = Draw.generator (seed + 1)
        let w = Draw.normal g [| rows; features; c.Bins + 1 |]
        let loss map (xs: Tensor[]) = ((map c xs: Tensor[])[0] * w).sum()
        let expected = Ad.gradN (loss composite) [| c.Raw |]
        let actual = Ad.gradN (loss fused) [| c.Raw |]
        Close.tensors $"gradient, K = {c.Bins}" { Abs = 1e-12; Rel = 1e-10 } expected[0] actual[0]
        if (actual[0].isnan() + actual[0].isinf()).sum().toScalar() > 0.0 then failwith $"non-finite gradient, K = {c.Bins}")

[<Fact>]
let ``the fused knots' backward agrees with central differences`` () =
    Gens.check 16 Gens.seed (fun seed ->
        let c = { draw seed 1.0 with Raw = Draw.normal (Draw.generator seed) [| rows; features; 1 + seed % 64 |] }
        FiniteDifferences.checkVjp $"knots, K = {c.Bins}" seed (fused c) [| c.Raw |])

[<Fact>]
let ``second derivatives through the fused knots equal the composite's and agree with central differences`` () =
    Gens.check 8 Gens.seed (fun seed ->
        let c = { draw seed 1.0 with Raw = Draw.normal (Draw.generator seed) [| rows; features; 1 + seed % 64 |] }
        let g = Draw.generator (seed + 2)
        let w = Draw.normal g [| rows; features; c.Bins + 1 |]
        // the gradient of Σ w·knots², whose VJP differentiates the knots' backward
        let gradient (map: Case -> Tensor[] -> Tensor[]) (xs: Tensor[]) =
            Ad.gradN (fun ys -> let knots = (map c ys)[0] in (knots.square() * w).sum()) xs
        let v = Draw.normal g c.Raw.shape
        let hessianTimes map = Ad.gradN (fun (xs: Tensor[]) -> ((gradient map xs)[0] * v).sum()) [| c.Raw |]
        let expected, actual = hessianTimes composite, hessianTimes fused
        Close.tensors $"Hessian-vector product, K = {c.Bins}" { Abs = 1e-12; Rel = 1e-10 } expected[0] actual[0]
        FiniteDifferences.checkVjpOfVjp $"knots, K = {c.Bins}" seed (fun xs -> (fused c xs)[0]) [| c.Raw |])

[<Fact>]
let ``sizes without a bin or with bins that cannot fit are refused with the argument's name`` () =
    let empty = Assert.Throws<ArgumentException>(fun () -> Spline.knots 1.0 0.0 (Tensor.zeros [| 3; 0 |]) |> ignore)
    Assert.Equal("raw", empty.ParamName)
    let crowded = Assert.Throws<ArgumentException>(fun () -> Spline.knots 1.0 0.25 (Tensor.zeros [| 3; 4 |]) |> ignore)
    Assert.Equal("minSize", crowded.ParamName)
