/// Family laws of the sum-of-squares polynomial flow: its closed-form integral and log-derivative
/// against a float64 Simpson quadrature of the paper's integrand computed one number at a time, strict
/// monotonicity along a grid through the linear tails, and the overflow guard in float32. Bisection,
/// inverse-of-inverse, monotonicity and triangularity of the whole layer are the shared laws in
/// NeuralAutoregressiveTests and MonotoneLayerTests.
module Flows.Properties.Bijectors.SumOfSquaresTests

open Xunit
open Flows.Transformers
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// Random transformer settings and raw coefficients for one feature: K squares of degree r, raw
/// values N(0, 0.8²).
let private randomCase (seed: int) =
    let g = Draw.generator seed
    let squares, degree = 1 + abs seed % 3, 1 + abs (seed / 3) % 4
    let bound, floor = 2.0 + float (abs seed % 5), 1e-3
    let raw = (Draw.normal g [| 1; 1; 1 + squares * (degree + 1) |]) * 0.8
    squares, degree, bound, floor, raw, Polynomial.ofRaw squares degree bound floor raw

/// The integrand ε + Σ_k (Σ_l a_kl t^l)², t = clamp(u/B, −1, 1), one number at a time from the raw values.
let private scalarIntegrand (squares: int) (degree: int) (bound: float) (floor: float) (raw: float[]) (u: float) =
    let t = max -1.0 (min 1.0 (u / bound))
    let mutable sum = floor
    for k in 0 .. squares - 1 do
        let mutable q = 0.0
        for l in 0 .. degree do
            q <- q + (raw[1 + k * (degree + 1) + l] + (if l = 0 then sqrt ((1.0 - floor) / float squares) else 0.0)) * pown t l
        sum <- sum + q * q
    sum

/// Composite Simpson on [a, b] with `intervals` (even) intervals.
let private simpson (intervals: int) (f: float -> float) (a: float) (b: float) =
    let h = (b - a) / float intervals
    let mutable sum = f a + f b
    for i in 1 .. intervals - 1 do sum <- sum + (if i % 2 = 1 then 4.0 else 2.0) * f (a + h * float i)
    h / 3.0 * sum

[<Fact>]
let ``the closed-form integral and log-derivative match a 2000-interval Simpson quadrature of the paper's integrand`` () =
    Gens.check 15 Gens.seed (fun seed ->
        let squares, degree, bound, floor, raw, poly = randomCase seed
        let values = raw.toArray64()
        let xs = Array.init 21 (fun i -> -1.5 * bound + 0.15 * bound * float i)
        let z, logDerivative = Polynomial.apply poly (Tensor.ofArray(xs, [| xs.Length; 1 |]))
        let f = scalarIntegrand squares degree bound floor values
        // split at the bound: the integrand has a kink there, and Simpson is exact on the constant tail
        let integral x = let edge = max -bound (min bound x) in simpson 2000 f 0.0 edge + simpson 2000 f edge x
        Close.arrays $"SOS integral (seed {seed}, K = {squares}, r = {degree}, B = {bound})" { Abs = 1e-9; Rel = 1e-9 }
            (xs |> Array.map (fun x -> values[0] + integral x)) (z.toArray64())
        Close.arrays $"SOS log-derivative (seed {seed})" { Abs = 1e-12; Rel = 1e-12 } (xs |> Array.map (f >> log)) (logDerivative.toArray64()))

[<Fact>]
let ``the SOS transformer is strictly increasing along a grid through both tails, with finite log-derivatives`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let _, _, bound, _, _, poly = randomCase seed
        let xs = Array.init 801 (fun i -> -4.0 * bound + 0.01 * bound * float i)
        let z, logDerivative = Polynomial.apply poly (Tensor.ofArray(xs, [| xs.Length; 1 |]))
        let values = z.toArray64()
        for i in 1 .. values.Length - 1 do
            if not (values[i] > values[i - 1]) then failwith $"seed {seed}: SOS({xs[i]}) = {values[i]} is not above SOS({xs[i - 1]}) = {values[i - 1]}"
        if (logDerivative.isnan() + logDerivative.isinf()).sum().toScalar() > 0.0 then failwith $"seed {seed}: non-finite log-derivative {logDerivative}")

[<Fact>]
let ``in float32, inputs up to 1e6 give finite outputs that agree with float64: no power of |x| is formed`` () =
    Gens.check 10 Gens.seed (fun seed ->
        let squares, degree, bound, floor, raw, poly = randomCase seed
        let xs = [| -1e6; -1e3; -bound; 0.5; bound; 1e3; 1e6 |]
        let z, logDerivative = Polynomial.apply poly (Tensor.ofArray(xs, [| xs.Length; 1 |]))
        let z32, logDerivative32 =
            Polynomial.apply (Polynomial.ofRaw squares degree bound floor (raw.cast Dtype.Float32)) (Tensor.ofArray(xs, [| xs.Length; 1 |]).cast Dtype.Float32)
        Close.tensors $"float32 z (seed {seed})" { Abs = 1e-3; Rel = 1e-5 } z (z32.cast Dtype.Float64)
        Close.tensors $"float32 log-derivative (seed {seed})" { Abs = 1e-5; Rel = 1e-5 } logDerivative (logDerivative32.cast Dtype.Float64))
