/// Laws every spline kind (rational-quadratic, piecewise-linear with learnt or fixed widths,
/// piecewise-quadratic, cubic) must meet as a transformer: knots strictly increasing from −B to B,
/// identity tails and identity at zero parameters, monotone, round trips, log-derivatives equal to
/// autodiff's and integrating (Gauss–Legendre) to the map, finite values and gradients at and
/// around ±B, far outside and at every knot; then each family's own shape (linear slopes,
/// quadratic vertex densities, Steffen's cubic derivatives and the cubic's double-root points).
module Flows.Properties.Bijectors.SplineKindTests

open System
open Xunit
open Flows.Tensors
open Flows.Transformers
open Flows.Laws
open Flows.Properties.Support

/// Every spline kind by name.
let kinds : seq<obj[]> = SplineKind.all |> Seq.map (fun k -> [| box (SplineKind.name k) |])

/// A drawn spline: its maps (the transformer's, which has no tensors of its own), bound, knots and
/// raw parameters for `rows` × `features` inputs.
type private Drawn =
    { Forward: Tensor -> Tensor -> Tensor * Tensor
      Inverse: Tensor -> Tensor -> Tensor * Tensor
      Bound: float
      Knots: Tensor -> Tensor * Tensor
      ParameterCount: int
      Raw: Tensor }

/// K = 2–8 bins on [−B, B] with B in 0.5–5, raw parameters N(0, scale²).
let private draw (kind: string) (g: Generator) (rows: int) (features: int) (scale: float) =
    let bins = (g.integers([| 1 |], 2, 9)).toArrayInt()[0]
    let bound = 0.5 + 4.5 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
    let spline = SplineKind.transformer bins bound (SplineKind.parse kind)
    { Forward = Transformer.forward spline
      Inverse = Transformer.inverse spline
      Bound = bound
      Knots = SplineKind.knots bins bound (SplineKind.parse kind)
      ParameterCount = spline.ParameterCount
      Raw = Draw.normal g [| rows; features; spline.ParameterCount |] * scale }

let private forward (s: Drawn) (x: Tensor) = s.Forward x s.Raw
let private inverse (s: Drawn) (y: Tensor) = s.Inverse y s.Raw

/// A one-element spline (`Raw` [1; 1; P]) evaluated at many points: outputs and log-derivatives.
let private at (map: Tensor -> Tensor -> Tensor * Tensor) (raw: Tensor) (points: float[]) =
    let n = points.Length
    let out, logDerivative = map (Tensor.ofArray(points, [| n; 1 |])) (raw.expand [| n; 1; raw.shape[2] |])
    out.toArray64(), logDerivative.toArray64()

/// The x and y knots of element `e` (row-major over rows × features).
let private knotsOf (s: Drawn) (e: int) =
    let xk, yk = s.Knots s.Raw
    let n = xk.shape[xk.dim - 1]
    xk.toArray64()[e * n .. (e + 1) * n - 1], yk.toArray64()[e * n .. (e + 1) * n - 1]

/// Element `e`'s raw parameters as a one-element spline [1; 1; P].
let private element (s: Drawn) (e: int) =
    let p = s.ParameterCount
    s.Raw.reshape([| -1; p |]).narrow(0, e, 1).reshape [| 1; 1; p |]

let private finite (what: string) (t: Tensor) =
    if (t.isnan() + t.isinf()).sum().toScalar() > 0.0 then failwith $"{what}: non-finite values in {t}"

let private exactly = { Abs = 0.0; Rel = 0.0 }

let private scales = [| 0.0; 1.0; 5.0; 30.0 |]

[<Theory; MemberData(nameof kinds)>]
let ``knots increase strictly from exactly -B to exactly B and the spline passes through them`` (kind: string) =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 2 2 scales[seed % 4]
        let bound = s.Bound
        for e in 0 .. 3 do
            let xk, yk = knotsOf s e
            for what, knots in [ "x", xk; "y", yk ] do
                Close.scalar $"element {e}: first {what} knot" exactly -bound knots[0]
                Close.scalar $"element {e}: last {what} knot" exactly bound knots[knots.Length - 1]
                for i in 0 .. knots.Length - 2 do
                    if not (knots[i + 1] > knots[i]) then failwith $"element {e}: {what} knots {knots[i]}, {knots[i + 1]} do not increase"
            let ys, _ = at s.Forward (element s e) xk
            Close.arrays $"element {e}: spline at its x knots" { Abs = 1e-12 * bound; Rel = 1e-12 } yk ys)

[<Theory; MemberData(nameof kinds)>]
let ``zero parameters give the identity inside the interval`` (kind: string) =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 5 3 0.0
        let x = Draw.uniform g (-s.Bound) s.Bound [| 5; 3 |]
        for what, (out, logDerivative) in [ "forward", forward s x; "inverse", inverse s x ] do
            Close.tensors $"{what} output" { Abs = 1e-12; Rel = 1e-12 } x out
            Close.tensors $"{what} log-derivative" { Abs = 1e-12; Rel = 0.0 } (x.zerosLike()) logDerivative)

[<Theory; MemberData(nameof kinds)>]
let ``outside [-B, B] both directions are exactly the identity with zero log-derivative`` (kind: string) =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 5 3 3.0
        let outside = (Draw.awayFromZero g s.Bound [| 5; 3 |]).toArray64() |> Array.map (fun v -> Math.BitIncrement(abs v) * float (sign v))
        let x = Tensor.ofArray(outside, [| 5; 3 |])
        for what, (out, logDerivative) in [ "forward", forward s x; "inverse", inverse s x ] do
            Close.tensors $"{what} output" exactly x out
            Close.tensors $"{what} log-derivative" exactly (x.zerosLike()) logDerivative)

[<Theory; MemberData(nameof kinds)>]
let ``the spline increases strictly across the interval and its tails`` (kind: string) =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 1 1 scales[seed % 4]
        let bound = s.Bound
        let grid = Array.init 1201 (fun i -> -1.2 * bound + 2.4 * bound * float i / 1200.0)
        for what, map in [ "forward", s.Forward; "inverse", s.Inverse ] do
            let out, logDerivative = at map s.Raw grid
            for i in 0 .. grid.Length - 2 do
                if not (out[i + 1] > out[i]) then failwith $"{what}: {out[i]} at {grid[i]} then {out[i + 1]} at {grid[i + 1]}"
            finite $"{what} log-derivatives" (Tensor.ofArray logDerivative))

[<Theory; MemberData(nameof kinds)>]
let ``inverse undoes forward and forward undoes inverse`` (kind: string) =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 4 3 1.5
        let v = Draw.normal g [| 4; 3 |] * s.Bound
        let tolerance = { Abs = 1e-10 * s.Bound; Rel = 1e-9 }
        let y, forwardLog = forward s v
        let back, inverseLog = inverse s y
        Close.tensors "inverse(forward x)" tolerance v back
        Close.tensors "inverse log-derivative = −forward's" { Abs = 1e-8; Rel = 1e-8 } (-forwardLog) inverseLog
        Close.tensors "forward(inverse y)" tolerance v (fst (forward s (fst (inverse s v)))))

[<Theory; MemberData(nameof kinds)>]
let ``the log-derivatives are those of autodiff`` (kind: string) =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 3 4 1.5
        let x = Draw.normal g [| 3; 4 |] * s.Bound
        // element-wise maps: the gradient of the sum is the derivative of each element
        let forwardSlope = Ad.grad (fun x -> (fst (forward s x)).sum()) x
        Close.tensors "forward" Tolerance.float64 (forwardSlope.log()) (snd (forward s x))
        let y = fst (forward s x)
        let inverseSlope = Ad.grad (fun y -> (fst (inverse s y)).sum()) y
        Close.tensors "inverse" { Abs = 1e-8; Rel = 1e-8 } (inverseSlope.log()) (snd (inverse s y)))

// 5-point Gauss–Legendre nodes and weights on [−1, 1]: exact for polynomials of degree 9
let private gaussNodes = [| 0.0; -0.5384693101056831; 0.5384693101056831; -0.9061798459386640; 0.9061798459386640 |]
let private gaussWeights = [| 0.5688888888888889; 0.4786286704993665; 0.4786286704993665; 0.2369268850561891; 0.2369268850561891 |]

[<Theory; MemberData(nameof kinds)>]
let ``the slope integrates to the map over every bin and every part of a bin`` (kind: string) =
    // the rational-quadratic spline has its own test against the paper's formulas: few cases here
    Gens.check (if kind = "rq" then 5 else 20) Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 1 1 1.0
        let xk, yk = knotsOf s 0
        let bins = xk.Length - 1
        // from each knot to the bin's end and to a random point inside it
        let ends = Array.init bins (fun k -> [| xk[k + 1]; xk[k] + (xk[k + 1] - xk[k]) * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar() |])
        let spans = [| for k in 0 .. bins - 1 do for e in ends[k] -> k, e |]
        // 5 Gauss–Legendre nodes per piece: exact for the polynomial slopes; the rational slope
        // needs many pieces where a bin is much wider than high
        let pieces = if kind = "rq" then 128 else 2
        let nodes =
            spans |> Array.collect (fun (k, e) ->
                let h = (e - xk[k]) / float pieces
                Array.init pieces (fun p -> gaussNodes |> Array.map (fun t -> xk[k] + h * (float p + (t + 1.0) / 2.0))) |> Array.concat)
        let _, logDerivative = at s.Forward s.Raw nodes
        let ys, _ = at s.Forward s.Raw (spans |> Array.map snd)
        let per = 5 * pieces
        spans |> Array.iteri (fun i (k, e) ->
            let h = (e - xk[k]) / float pieces
            let integral = h / 2.0 * Array.sum (Array.init per (fun j -> gaussWeights[j % 5] * exp logDerivative[i * per + j]))
            let tolerance = if kind = "rq" then { Abs = 1e-8 * s.Bound; Rel = 1e-6 } else { Abs = 1e-12 * s.Bound; Rel = 1e-10 }
            let expected = if e = xk[k + 1] then yk[k + 1] else ys[i]
            Close.scalar $"bin {k}: ∫ slope from {xk[k]} to {e}" tolerance (expected - yk[k]) integral))

/// ±B, one ulp inside and outside, far outside and 0, in the dtype's own arithmetic.
let private edges (dtype: Dtype) (bound: float) =
    let points =
        if dtype = Dtype.Float32 then
            let b = float32 bound
            [| b; MathF.BitIncrement b; MathF.BitDecrement b; 1e4f; 0.0f |] |> Array.collect (fun v -> [| float v; -(float v) |])
        else [| bound; Math.BitIncrement bound; Math.BitDecrement bound; 1e4; 0.0 |] |> Array.collect (fun v -> [| v; -v |])
    Tensor.ofArray(points, [| 1; points.Length |]).cast dtype

[<Theory; MemberData(nameof kinds)>]
let ``values and gradients are finite at and one ulp around the ends, far outside and at zero, in float64 and float32`` (kind: string) =
    Gens.check 24 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let dtype = if seed % 2 = 0 then Dtype.Float64 else Dtype.Float32
        let s0 = draw kind g 1 10 scales[(seed / 2) % 4]
        let s = { s0 with Raw = s0.Raw.cast dtype }
        let bound = s.Bound
        let v = edges dtype bound
        let points = v.toArray64()
        let slack = if dtype = Dtype.Float32 then 1e-4 else 1e-9
        for what, map in [ "forward", s.Forward; "inverse", s.Inverse ] do
            let out, logDerivative = map v s.Raw
            finite $"{what} values" out
            finite $"{what} log-derivatives" logDerivative
            // continuous with the identity tails at both ends in value (one ulp inside, the end
            // slope moves it: the linear spline's may be steep), and (float64, all but the linear
            // spline, whose end slopes are free) in slope
            let outs, lds = out.toArray64(), logDerivative.toArray64()
            for i in 0 .. points.Length - 1 do
                if abs points[i] < 1e3 && abs points[i] > 0.0 then
                    let edge = float (sign points[i]) * float (if dtype = Dtype.Float32 then float (float32 bound) else bound)
                    Close.scalar $"{what} at {points[i]}" { Abs = slack * bound; Rel = 0.0 } (edge + exp lds[i] * (points[i] - edge)) outs[i]
                    if dtype = Dtype.Float64 && not (kind.StartsWith "linear") then
                        Close.scalar $"{what} log-slope at {points[i]}" { Abs = 1e-6; Rel = 0.0 } 0.0 lds[i]
            let grads = Ad.gradN (fun t -> let o, l = map t[0] t[1] in o.sum() + l.sum()) [| v; s.Raw |]
            Array.iter2 (fun (n: string) (gr: Tensor) -> finite $"{what}: gradient of {n}" gr) [| "inputs"; "raw parameters" |] grads)

[<Theory; MemberData(nameof kinds)>]
let ``values and gradients are finite at every knot and one ulp either side`` (kind: string) =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw kind g 1 1 scales[seed % 4]
        let xk, yk = knotsOf s 0
        for what, map, knots in [ "forward", s.Forward, xk; "inverse", s.Inverse, yk ] do
            let points = knots |> Array.collect (fun v -> [| Math.BitDecrement v; v; Math.BitIncrement v |])
            let n = points.Length
            let v = Tensor.ofArray(points, [| n; 1 |])
            let raw = s.Raw.expand [| n; 1; s.ParameterCount |]
            let out, logDerivative = map v raw
            finite $"{what} values at the knots" out
            finite $"{what} log-derivatives at the knots" logDerivative
            Ad.gradN (fun t -> let o, l = map t[0] t[1] in o.sum() + l.sum()) [| v; raw |]
            |> Array.iter (finite $"{what}: gradients at the knots"))

/// The element's slope at points, from its log-derivative.
let private slopes (s: Drawn) (points: float[]) = snd (at s.Forward s.Raw points) |> Array.map exp

[<Fact>]
let ``the linear spline's slope in each bin is the bin's height over its width, and fixed widths are equal`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let kind = if seed % 2 = 0 then "linear" else "linear-fixed"
        let s = draw kind g 1 1 scales[(seed / 2) % 4]
        let xk, yk = knotsOf s 0
        let bins = xk.Length - 1
        let middles = Array.init bins (fun k -> 0.5 * (xk[k] + xk[k + 1]))
        Close.arrays "slopes" Tolerance.float64 (Array.init bins (fun k -> (yk[k + 1] - yk[k]) / (xk[k + 1] - xk[k]))) (slopes s middles)
        if kind = "linear-fixed" then
            let bound = s.Bound
            Close.arrays "fixed knots" { Abs = 1e-12 * bound; Rel = 0.0 } (Array.init (bins + 1) (fun k -> -bound + 2.0 * bound * float k / float bins)) xk)

[<Fact>]
let ``the quadratic spline's density is continuous, linear in each bin, 1 at the ends and above the minimum`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw "quadratic" g 1 1 scales[seed % 4]
        let xk, _ = knotsOf s 0
        let bins = xk.Length - 1
        let vertices = slopes s xk
        Close.scalar "density at -B" Tolerance.float64 1.0 vertices[0]
        Close.scalar "density at B" Tolerance.float64 1.0 vertices[bins]
        for v in vertices do
            if not (v >= 1e-3 * (1.0 - 1e-9)) then failwith $"vertex density {v} below the minimum 1e-3"
        // from the left: each bin's density at its right end is the next vertex
        let leftOfKnots = slopes s (Array.init bins (fun k -> xk[k + 1] - 1e-9 * (xk[k + 1] - xk[k])))
        Close.arrays "continuous at the knots" { Abs = 1e-6; Rel = 1e-6 } vertices[1..] leftOfKnots
        let middles = Array.init bins (fun k -> 0.5 * (xk[k] + xk[k + 1]))
        Close.arrays "linear in each bin" Tolerance.float64 (Array.init bins (fun k -> 0.5 * (vertices[k] + vertices[k + 1]))) (slopes s middles))

/// Steffen's (1990) derivatives at the knots, 1 at both ends, computed one number at a time.
let private steffen (xk: float[]) (yk: float[]) =
    let k = xk.Length - 1
    let w = Array.init k (fun i -> xk[i + 1] - xk[i])
    let slope = Array.init k (fun i -> (yk[i + 1] - yk[i]) / w[i])
    Array.init (k + 1) (fun i ->
        if i = 0 || i = k then 1.0
        else List.min [ 2.0 * slope[i - 1]; 2.0 * slope[i]; (slope[i - 1] * w[i] + slope[i] * w[i - 1]) / (w[i - 1] + w[i]) ])

[<Fact>]
let ``the cubic spline has Steffen's knot derivatives and its end bins keep slopes above 1/3`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw "cubic" g 1 1 scales[seed % 4]
        let xk, yk = knotsOf s 0
        let bins = xk.Length - 1
        Close.arrays "knot derivatives" { Abs = 1e-12; Rel = 1e-9 } (steffen xk yk) (slopes s xk)
        for k in [ 0; bins - 1 ] do
            let slope = (yk[k + 1] - yk[k]) / (xk[k + 1] - xk[k])
            if not (slope > 1.0 / 3.0) then failwith $"end bin {k} has slope {slope}, not above 1/3 (the derivative 1 would break monotonicity)")

[<Fact>]
let ``the cubic inverse is finite in value and gradient where a bin's cubic has a double root`` () =
    let found = ref 0
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let s = draw "cubic" g 1 1 (if seed % 2 = 0 then 2.0 else 5.0)
        let xk, yk = knotsOf s 0
        let d = steffen xk yk
        // g(ξ) = d₀ξ + bξ² + aξ³ in units of the bin's width; g(ξ) − τ has a double root where g'(ξ) = 0
        let points =
            [ for k in 0 .. xk.Length - 2 do
                  let w = xk[k + 1] - xk[k]
                  let sk = (yk[k + 1] - yk[k]) / w
                  let b, a = 3.0 * sk - 2.0 * d[k] - d[k + 1], d[k] + d[k + 1] - 2.0 * sk
                  let disc = 4.0 * b * b - 12.0 * a * d[k]
                  if abs a > 1e-9 && disc >= 0.0 then
                      for xi in [ (-2.0 * b + sqrt disc) / (6.0 * a); (-2.0 * b - sqrt disc) / (6.0 * a) ] do
                          let y = yk[k] + w * xi * (d[k] + xi * (b + xi * a))
                          if y > yk[k] && y < yk[k + 1] then yield k, y ]
        for k, y in points do
            found.Value <- found.Value + 1
            let yt = Tensor.ofArray([| y |], [| 1; 1 |])
            let x, logDerivative = inverse s yt
            finite $"bin {k}: inverse at y = {y}" x
            finite $"bin {k}: inverse log-derivative at y = {y}" logDerivative
            Ad.gradN (fun t -> let o, l = s.Inverse t[0] t[1] in o.sum() + l.sum()) [| yt; s.Raw |]
            |> Array.iter (finite $"bin {k}: gradients of the inverse at y = {y}")
            Close.tensors $"bin {k}: forward of the inverse at y = {y}" { Abs = 1e-10; Rel = 1e-9 } yt (fst (forward s x)))
    Assert.True(found.Value > 0, "no double-root points drawn")

[<Theory; MemberData(nameof kinds)>]
let ``raw parameters of the wrong size are rejected with the expected shape`` (kind: string) =
    let spline = SplineKind.transformer 4 3.0 (SplineKind.parse kind)
    let x = Tensor.zeros([| 2; 3 |], Dtype.Float64)
    let raw = Tensor.zeros([| 2; 3; spline.ParameterCount + 1 |], Dtype.Float64)
    for map in [ Transformer.forward spline; Transformer.inverse spline ] do
        let error = Assert.Throws<ArgumentException>(fun () -> map x raw |> ignore)
        Assert.Equal("raw", error.ParamName)
        Assert.Contains(Shape.show [| 2; 3; spline.ParameterCount |], error.Message)

[<Fact>]
let ``an unknown spline kind names the kinds there are`` () =
    let error = Assert.Throws<ArgumentException>(fun () -> SplineKind.parse "bezier" |> ignore)
    for kind in SplineKind.all do
        Assert.Contains(SplineKind.name kind, error.Message)

[<Theory; MemberData(nameof kinds)>]
let ``a spline of one bin or a non-positive bound is rejected when built`` (kind: string) =
    let error = Assert.Throws<ArgumentException>(fun () -> SplineKind.transformer 1 3.0 (SplineKind.parse kind) |> ignore)
    Assert.Equal("Bins", error.ParamName)
    let error = Assert.Throws<ArgumentException>(fun () -> SplineKind.transformer 4 0.0 (SplineKind.parse kind) |> ignore)
    Assert.Equal("Bound", error.ParamName)
