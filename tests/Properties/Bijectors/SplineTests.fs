/// Laws particular to the rational-quadratic spline (Durkan et al. 2019) and the flows built on it:
/// knots and knot derivatives, the paper's formulas, and finite values and gradients at the double
/// roots of the inverse's quadratic. The laws every spline kind shares (identity
/// tails and at zero parameters, autodiff log-derivatives, the interval's ends) are SplineKindTests'.
module Flows.Properties.Bijectors.SplineTests

open System
open Xunit
open Flows
open Flows.Tensors
open Flows.Transformers
open Flows.Laws
open Flows.Properties.Support

/// Durkan et al.'s spline one number at a time (eq. 4 and its derivative), with the knot recipe of
/// nflows and a bisection inverse: written apart from the tensor code it checks.
module private Scalar =

    let softplus (x: float) = max x 0.0 + log (1.0 + exp (-(abs x)))

    let knots (bound: float) (minSize: float) (raw: float[]) =
        let k = raw.Length
        let top = Array.max raw
        let e = raw |> Array.map (fun v -> exp (v - top))
        let total = Array.sum e
        let sizes = e |> Array.map (fun v -> minSize + (1.0 - minSize * float k) * v / total)
        Array.scan (+) 0.0 sizes |> Array.mapi (fun i c -> if i = 0 then -bound elif i = k then bound else -bound + 2.0 * bound * c)

    let derivatives (minDerivative: float) (raw: float[]) =
        Array.concat [ [| 1.0 |]; raw |> Array.map (fun u -> softplus (u + log (exp (1.0 - minDerivative) - 1.0)) + minDerivative); [| 1.0 |] ]

    /// y and log dy/dx.
    let forward (bound: float) (xk: float[]) (yk: float[]) (dk: float[]) (x: float) =
        if x < -bound || x > bound then x, 0.0
        else
            let k = xk[.. xk.Length - 2] |> Array.findIndexBack (fun knot -> knot <= x)
            let w, h = xk[k + 1] - xk[k], yk[k + 1] - yk[k]
            let s = h / w
            let xi = (x - xk[k]) / w
            let t = xi * (1.0 - xi)
            let denominator = s + (dk[k + 1] + dk[k] - 2.0 * s) * t
            yk[k] + h * (s * xi * xi + dk[k] * t) / denominator,
            log (s * s * (dk[k + 1] * xi * xi + 2.0 * s * t + dk[k] * (1.0 - xi) * (1.0 - xi)) / (denominator * denominator))

    /// x with forward x = y by bisection on [−B, B] (the identity outside), and log dx/dy.
    let inverse (bound: float) (xk: float[]) (yk: float[]) (dk: float[]) (y: float) =
        if y < -bound || y > bound then y, 0.0
        else
            let mutable lo, hi = -bound, bound
            let mutable i = 0
            while i < 200 && lo < hi do
                let mid = 0.5 * (lo + hi)
                if mid = lo || mid = hi then i <- 200
                elif fst (forward bound xk yk dk mid) < y then lo <- mid
                else hi <- mid
                i <- i + 1
            let x = 0.5 * (lo + hi)
            x, -(snd (forward bound xk yk dk x))

/// A drawn spline: its config and raw parameters for `rows` × `features` inputs.
type private Drawn =
    { Config: Spline.Config
      Widths: Tensor
      Heights: Tensor
      Derivatives: Tensor }

/// K = 2–8 bins on [−B, B] with B in 0.5–5, raw parameters N(0, scale²).
let private draw (g: Generator) (rows: int) (features: int) (scale: float) =
    let bins = (g.integers([| 1 |], 2, 9)).toArrayInt()[0]
    let bound = 0.5 + 4.5 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
    { Config = Spline.config bins bound
      Widths = Draw.normal g [| rows; features; bins |] * scale
      Heights = Draw.normal g [| rows; features; bins |] * scale
      Derivatives = Draw.normal g [| rows; features; bins - 1 |] * scale }

/// The scalar spline of element `e` (row-major over rows × features): x knots, y knots, derivatives.
let private scalarSpline (s: Drawn) (e: int) =
    let k = s.Config.Bins
    let slice (t: Tensor) (n: int) = t.toArray64()[e * n .. (e + 1) * n - 1]
    Scalar.knots s.Config.Bound s.Config.MinWidth (slice s.Widths k),
    Scalar.knots s.Config.Bound s.Config.MinHeight (slice s.Heights k),
    Scalar.derivatives s.Config.MinDerivative (slice s.Derivatives (k - 1))

let private forward (s: Drawn) (x: Tensor) = RationalQuadratic.forward s.Config x s.Widths s.Heights s.Derivatives
let private inverse (s: Drawn) (y: Tensor) = RationalQuadratic.inverse s.Config y s.Widths s.Heights s.Derivatives

let private finite (what: string) (t: Tensor) =
    if (t.isnan() + t.isinf()).sum().toScalar() > 0.0 then failwith $"{what}: non-finite values in {t}"

let private exactly = { Abs = 0.0; Rel = 0.0 }

[<Fact>]
let ``knots increase strictly from exactly -B to exactly B, every bin at least the minimum`` () =
    Gens.check 60 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let bins = (g.integers([| 1 |], 1, 12)).toArrayInt()[0]
        let bound = 0.1 + 10.0 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
        let minSize = if seed % 2 = 0 then 1e-3 else (g.uniform([| 1 |], 1e-4, 0.9 / float bins, Dtype.Float64)).toScalar()
        // up to scale 30: softmax then leaves most bins at exactly the minimum
        let scale = [| 0.0; 1.0; 5.0; 30.0 |][seed % 4]
        let raw = Draw.normal g [| 3; bins |] * scale
        let knots = Spline.knots bound minSize raw
        Close.shape "knots" [| 3; bins + 1 |] knots
        let values = knots.toArray64()
        for r in 0 .. 2 do
            let row = values[r * (bins + 1) .. (r + 1) * (bins + 1) - 1]
            Close.scalar $"row {r} first knot" exactly -bound row[0]
            Close.scalar $"row {r} last knot" exactly bound row[bins]
            for i in 0 .. bins - 1 do
                let size = row[i + 1] - row[i]
                if not (size > 0.0 && size >= 2.0 * bound * minSize * (1.0 - 1e-9)) then
                    failwith $"row {r}: bin {i} has size {size}, below the minimum {2.0 * bound * minSize}"
            let expected = Scalar.knots bound minSize (raw.toArray64()[r * bins .. (r + 1) * bins - 1])
            Close.arrays $"row {r} knots" Tolerance.float64 expected row)

[<Fact>]
let ``knot derivatives are 1 at both ends, above the minimum inside, and 1 everywhere at zero parameters`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let inner = (g.integers([| 1 |], 1, 8)).toArrayInt()[0]
        let raw = Draw.normal g [| 2; inner |] * 10.0
        let d = (RationalQuadratic.derivatives 1e-3 raw).toArray64()
        for r in 0 .. 1 do
            let row = d[r * (inner + 2) .. (r + 1) * (inner + 2) - 1]
            Close.scalar "first derivative" exactly 1.0 row[0]
            Close.scalar "last derivative" exactly 1.0 row[inner + 1]
            Close.arrays "derivatives" Tolerance.float64 (Scalar.derivatives 1e-3 (raw.toArray64()[r * inner .. (r + 1) * inner - 1])) row
            for v in row do
                if not (v >= 1e-3) then failwith $"derivative {v} below the minimum"
        let atZero = (RationalQuadratic.derivatives 1e-3 (raw.zerosLike())).toArray64()
        Close.arrays "derivatives at zero" Tolerance.float64 (Array.create atZero.Length 1.0) atZero)

[<Fact>]
let ``the spline and its inverse match the paper's formulas and a bisection inverse`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw g 4 3 1.5
        let bound = s.Config.Bound
        // inside and outside the interval
        let x = Draw.normal g [| 4; 3 |] * bound
        let y, logDerivative = forward s x
        let xs, ys, lds = x.toArray64(), y.toArray64(), logDerivative.toArray64()
        let back, inverseLog = inverse s y
        let backs, inverseLogs = back.toArray64(), inverseLog.toArray64()
        for e in 0 .. 11 do
            let xk, yk, dk = scalarSpline s e
            let expectedY, expectedLog = Scalar.forward bound xk yk dk xs[e]
            Close.scalar $"element {e}: y" Tolerance.float64 expectedY ys[e]
            Close.scalar $"element {e}: log dy/dx" Tolerance.float64 expectedLog lds[e]
            let expectedX, expectedInverseLog = Scalar.inverse bound xk yk dk ys[e]
            Close.scalar $"element {e}: inverse" { Abs = 1e-9; Rel = 1e-9 } expectedX backs[e]
            Close.scalar $"element {e}: inverse log dx/dy" { Abs = 1e-7; Rel = 1e-7 } expectedInverseLog inverseLogs[e]
            Close.scalar $"element {e}: round trip" { Abs = 1e-10; Rel = 1e-9 } xs[e] backs[e])

[<Fact>]
let ``the stable root has finite value and gradients at double roots`` () =
    Gens.check 40 Gens.seed (fun seed ->
        let g = Draw.generator seed
        // a·(t − r)²: exact zero discriminants (a = 1, dyadic r) and rounded ones of either sign
        let a = if seed % 2 = 0 then Tensor.ones([| 6 |], Dtype.Float64) else Draw.awayFromZero g 0.1 [| 6 |]
        let r = if seed % 2 = 0 then (Draw.normal g [| 6 |] * 8.0).round() / 8.0 else Draw.normal g [| 6 |]
        let b, c = a * r * -2.0, a * r.square()
        let root = Spline.quadraticRoot a b c
        Close.tensors "double root" { Abs = 1e-6; Rel = 1e-6 } r root
        Ad.gradN (fun t -> (Spline.quadraticRoot t[0] t[1] t[2]).sum()) [| a; b; c |]
        |> Array.iteri (fun i gr -> finite $"gradient {i}" gr))

[<Fact>]
let ``the inverse is finite in value and gradient at the points where a bin's quadratic has a double root`` () =
    let found = ref 0
    Gens.check 40 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw g 1 1 2.0
        let xk, yk, dk = scalarSpline s 0
        // disc(Δ) = (h d₀ − Δe)² + 4sΔ(h(s − d₀) + Δe) for Δ = y − y_k, e = d₀ + d₁ − 2s: its roots
        let points =
            [ for k in 0 .. s.Config.Bins - 1 do
                  let w, h = xk[k + 1] - xk[k], yk[k + 1] - yk[k]
                  let sk, d0 = h / w, dk[k]
                  let e = d0 + dk[k + 1] - 2.0 * sk
                  let qa, qb, qc = e * e + 4.0 * sk * e, 4.0 * sk * h * (sk - d0) - 2.0 * h * d0 * e, h * h * d0 * d0
                  let disc = qb * qb - 4.0 * qa * qc
                  if abs qa > 1e-12 && disc >= 0.0 then
                      for delta in [ (-qb + sqrt disc) / (2.0 * qa); (-qb - sqrt disc) / (2.0 * qa) ] do
                          yield k, delta, yk[k] + delta ]
        for k, delta, y in points do
            found.Value <- found.Value + 1
            let w, h = xk[k + 1] - xk[k], yk[k + 1] - yk[k]
            let sk, d0 = h / w, dk[k]
            let e = d0 + dk[k + 1] - 2.0 * sk
            let coefficient (v: float) = Tensor.ofArray [| v |]
            let a, b, c = coefficient (h * (sk - d0) + delta * e), coefficient (h * d0 - delta * e), coefficient (-(sk * delta))
            finite $"bin {k}: root of its own quadratic at y = {y}" (Spline.quadraticRoot a b c)
            Ad.gradN (fun t -> (Spline.quadraticRoot t[0] t[1] t[2]).sum()) [| a; b; c |]
            |> Array.iter (finite $"bin {k}: gradient of the root at y = {y}")
            let yt = Tensor.ofArray([| y |], [| 1; 1 |])
            let x, logDerivative = inverse s yt
            finite $"inverse at y = {y}" x
            finite $"inverse log-derivative at y = {y}" logDerivative
            Ad.gradN (fun t -> let o, l = RationalQuadratic.inverse s.Config t[0] t[1] t[2] t[3] in o.sum() + l.sum()) [| yt; s.Widths; s.Heights; s.Derivatives |]
            |> Array.iter (finite $"gradients of the inverse at y = {y}")
            Close.tensors $"forward of the inverse at y = {y}" { Abs = 1e-9; Rel = 1e-9 } yt (fst (forward s x)))
    Assert.True(found.Value > 0, "no double-root points drawn")

/// Spline flows in the catalogue (their settings name the interval bound).
let splineEntries : seq<obj[]> =
    Fixtures.all
    |> Seq.filter (fun e -> (e.Create (Generator 1UL) Dtype.Float64 (List.head e.Dims)).Settings.ContainsKey "bound")
    |> Seq.map (fun e -> [| box e.Name |])

[<Theory; MemberData(nameof splineEntries)>]
let ``spline flows are exactly the identity where every input lies outside [-B, B]`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let bound = Settings.float "bound" case.Bijector.Settings
        let g = Generator(uint64 case.Seed)
        let outside = (Draw.awayFromZero g bound case.X.shape).toArray64() |> Array.map (fun v -> Math.BitIncrement(abs v) * float (sign v))
        let x = Tensor.ofArray(outside, case.X.shape)
        for what, (out, logDet) in [ "forward", Bijector.forward case.Context x case.Bijector; "inverse", Bijector.inverse case.Context x case.Bijector ] do
            Close.tensors $"{name} {what}" exactly x out
            Close.tensors $"{name} {what} log-det" exactly (logDet.zerosLike()) logDet)

[<Theory; MemberData(nameof splineEntries)>]
let ``spline flows start as the identity in both directions`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let b = case.Fixture.Create (Generator(uint64 case.Seed)) Dtype.Float64 case.Dim
        for what, (out, logDet) in [ "forward", Bijector.forward case.Context case.X b; "inverse", Bijector.inverse case.Context case.Y b ] do
            let input = if what = "forward" then case.X else case.Y
            Close.tensors $"{name} {what}" Tolerance.float64 input out
            Close.tensors $"{name} {what} log-det" Tolerance.float64 (logDet.zerosLike()) logDet)
