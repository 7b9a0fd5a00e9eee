/// The fused rational-quadratic spline (RationalQuadratic.evaluate: one raw op forward, one raw op
/// backward) against its definition composed from tensor ops (RationalQuadratic.composite): values
/// and log-derivatives, first derivatives against autodiff of the composite and central
/// differences, second derivatives against central differences, at random points and at the
/// points where sanitising matters (±B, one ulp either side, far outside, 0, the knots).
module Flows.Properties.Bijectors.FusedSplineTests

open System
open Xunit
open Flows.Tensors
open Flows.Transformers
open Flows.Laws
open Flows.Properties.Support

/// Knots of a random spline for `rows` × `features` values: x and y knots, knot derivatives, bound.
type private Knots = { X: Tensor; Y: Tensor; D: Tensor; Bound: float }

let private rows, features = 4, 6

// K = 2–8 bins on [−B, B], B in 0.5–5, raw parameters N(0, scale²)
let private draw (g: Generator) (scale: float) =
    let bins = (g.integers([| 1 |], 2, 9)).toArrayInt()[0]
    let bound = 0.5 + 4.5 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
    let config = Spline.config bins bound
    let raw (n: int) = Draw.normal g [| rows; features; n |] * scale
    { X = Spline.knots bound config.MinWidth (raw bins)
      Y = Spline.knots bound config.MinHeight (raw bins)
      D = RationalQuadratic.derivatives config.MinDerivative (raw (bins - 1))
      Bound = bound }

/// Inputs [rows, features]: the first ten are ±B, ±B ± 1 ulp, ±1e4; then each element's own
/// inner and end knots in turn (x knots forward, y knots inverse); the rest uniform on [−1.2B, 1.2B].
let private inputs (g: Generator) (k: Knots) (inverse: bool) =
    let b = k.Bound
    let special = [| b; -b; Math.BitIncrement b; -(Math.BitIncrement b); Math.BitDecrement b; -(Math.BitDecrement b); 1e4; -1e4; 0.0; -0.0 |]
    let knots = (if inverse then k.Y else k.X).toArray64()
    let perRow = knots.Length / (rows * features)
    let values = (Draw.uniform g (-1.2 * b) (1.2 * b) [| rows * features |]).toArray64()
    for e in 0 .. values.Length - 1 do
        if e < special.Length then values[e] <- special[e]
        elif e < 2 * special.Length + perRow then values[e] <- knots[e * perRow + (e % perRow)]
    Tensor.ofArray(values, [| rows; features |])

let private outputs (map: float -> bool -> Tensor -> Tensor -> Tensor -> Tensor -> Tensor * Tensor) (k: Knots) (inverse: bool) (xs: Tensor[]) =
    let y, l = map k.Bound inverse xs[0] xs[1] xs[2] xs[3]
    [| y; l |]

let private fused = outputs RationalQuadratic.evaluate
let private composite = outputs RationalQuadratic.composite
let private directions = [ "forward", false; "inverse", true ]
let private names = [| "v"; "x knots"; "y knots"; "derivatives" |]

// Σ w·y + Σ u·log-derivative for fixed random weights
let private weighted (g: Generator) (dtype: Dtype) =
    let w, u = (Draw.normal g [| rows; features |]).cast dtype, (Draw.normal g [| rows; features |]).cast dtype
    fun (map: Tensor[] -> Tensor[]) (xs: Tensor[]) -> let o = map xs in (o[0] * w).sum() + (o[1] * u).sum()

[<Fact>]
let ``the fused spline equals its composite definition in value and log-derivative, in both directions`` () =
    Gens.check 40 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let scale = [| 0.0; 1.0; 3.0; 10.0 |][seed % 4]
        let k = draw g scale
        for what, inverse in directions do
            let xs = [| inputs g k inverse; k.X; k.Y; k.D |]
            let expected, actual = composite k inverse xs, fused k inverse xs
            Close.tensors $"{what} values" { Abs = 1e-12; Rel = 1e-12 } expected[0] actual[0]
            Close.tensors $"{what} log-derivatives" { Abs = 1e-12; Rel = 1e-12 } expected[1] actual[1])

[<Fact>]
let ``the fused backward equals autodiff of the composite, also at the ends, the knots and far outside`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let scale = [| 0.0; 1.0; 3.0 |][seed % 3]
        let k = draw g scale
        for what, inverse in directions do
            let xs = [| inputs g k inverse; k.X; k.Y; k.D |]
            let loss = weighted g Dtype.Float64
            let expected = Ad.gradN (loss (composite k inverse)) xs
            let actual = Ad.gradN (loss (fused k inverse)) xs
            for i in 0 .. 3 do
                Close.tensors $"{what}: gradient of {names[i]}" Tolerance.float64 expected[i] actual[i]
                if (actual[i].isnan() + actual[i].isinf()).sum().toScalar() > 0.0 then failwith $"{what}: non-finite gradient of {names[i]}")

[<Fact>]
let ``the fused backward agrees with central differences in every input`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let k = draw g 1.0
        for what, inverse in directions do
            // random points only: central differences straddle the kinks at ±B and at the knots
            let v = Draw.uniform g (-1.2 * k.Bound) (1.2 * k.Bound) [| rows; features |]
            FiniteDifferences.checkVjp $"{what} spline" seed (fused k inverse) [| v; k.X; k.Y; k.D |])

[<Fact>]
let ``second derivatives through the fused spline agree with central differences of its fused gradient`` () =
    Gens.check 8 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let k = draw g 1.0
        for what, inverse in directions do
            let v = Draw.uniform g (-1.2 * k.Bound) (1.2 * k.Bound) [| rows; features |]
            let u = Draw.normal g [| rows; features |]
            // one output that mixes both: its VJP runs the fused backward, whose own VJP the composite's
            let f (xs: Tensor[]) = let o = fused k inverse xs in o[0] + o[1] * u
            let c = Draw.normal g [| rows; features |]
            FiniteDifferences.checkVjp $"{what}: gradient of the spline" seed (FiniteDifferences.vjpFunction f) [| v; k.X; k.Y; k.D; c |])

[<Fact>]
let ``in float32 the fused spline is finite with finite gradients and close to the composite`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let scale = [| 0.0; 1.0; 5.0; 30.0 |][seed % 4]
        let k64 = draw g scale
        let k = { k64 with X = k64.X.cast Dtype.Float32; Y = k64.Y.cast Dtype.Float32; D = k64.D.cast Dtype.Float32 }
        for what, inverse in directions do
            let b = float32 k.Bound
            let values = (inputs g k64 inverse).toArray64() |> Array.map float32
            // the ends and one float32 ulp either side
            Array.blit [| b; -b; MathF.BitIncrement b; -(MathF.BitIncrement b); MathF.BitDecrement b; -(MathF.BitDecrement b) |] 0 values 0 6
            let xs = [| Tensor.ofArray(values, [| rows; features |]); k.X; k.Y; k.D |]
            let expected, actual = composite k inverse xs, fused k inverse xs
            let grads = Ad.gradN (weighted g Dtype.Float32 (fused k inverse)) xs
            for t in Array.append actual grads do
                if (t.isnan() + t.isinf()).sum().toScalar() > 0.0 then failwith $"{what}: non-finite float32 output or gradient {t}"
            Close.tensors $"{what} float32 values" Tolerance.float32 expected[0] actual[0]
            Close.tensors $"{what} float32 log-derivatives" { Abs = 1e-3; Rel = 1e-4 } expected[1] actual[1])

[<Fact>]
let ``knots that do not match the values one row each are refused with the argument's name`` () =
    let g = Draw.generator 3
    let k = draw g 1.0
    let v = Draw.normal g [| rows; features |]
    let shared = k.Y.narrow(0, 0, 1)
    let e = Assert.Throws<ArgumentException>(fun () -> RationalQuadratic.evaluate k.Bound false v k.X shared k.D |> ignore)
    Assert.Equal("yKnots", e.ParamName)
    Assert.Contains(Shape.show shared.shape, e.Message)
