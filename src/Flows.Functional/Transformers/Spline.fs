/// Parts shared by the monotone splines on [−B, B] (linear, quadratic, cubic, rational-quadratic):
/// their shape, knots from unnormalised bin sizes, the bin of each input, the stable quadratic root
/// and the sanitising of inputs outside the interval.
module Flows.Transformers.Spline

open Flows
open Flows.Tensors

/// A spline's shape: K bins on [−Bound, Bound] and the lower bounds of bins and derivatives.
type Config =
    { Bins: int
      Bound: float
      MinWidth: float
      MinHeight: float
      MinDerivative: float }

/// K bins on [−bound, bound] with nflows' minima (1e-3).
let config (bins: int) (bound: float) =
    { Bins = bins; Bound = bound; MinWidth = 1e-3; MinHeight = 1e-3; MinDerivative = 1e-3 }

/// Checks the bin count (at least `fewest`) and the bound; `family` names the spline in the error.
let checkConfig (family: string) (fewest: int) (config: Config) =
    Guard.that (nameof config.Bins) (config.Bins >= fewest) $"a {family} spline needs at least {fewest} bins, got {config.Bins}"
    Guard.positiveFloat (nameof config.Bound) config.Bound

// pad widths that touch only the last dimension
let private last (rank: int) (n: int) = Array.init rank (fun i -> if i = rank - 1 then n else 0)

/// Knots [..., K+1] from bin sizes [..., K] that sum to 2·bound: the running sum from −bound, with
/// the ends set to exactly ±bound so that rounding never leaves a gap at the interval's ends.
let edges (bound: float) (sizes: Tensor) =
    let k = sizes.shape[sizes.dim - 1]
    let inner = sizes.cumsum(-1).narrow(-1, 0, k - 1) - bound
    inner.pad(last sizes.dim 1, last sizes.dim 0, -bound).pad(last sizes.dim 0, last sizes.dim 1, bound)

// at least one bin per row, and room for K bins of the least size
let private checkKnots (minSize: float) (raw: Tensor) =
    Guard.that (nameof raw) (raw.dim >= 1 && raw.shape[raw.dim - 1] >= 1) $"expected unnormalised bin sizes [..., K ≥ 1], got {Shape.show raw.shape}"
    let k = raw.shape[raw.dim - 1]
    Guard.that (nameof minSize) (minSize >= 0.0 && minSize * float k < 1.0) $"{k} bins of at least {minSize} do not fit in the interval"

/// Knots [..., K+1] from unnormalised bin sizes [..., K]: minSize + (1 − K·minSize)·softmax, in
/// units of the interval's length 2·bound. Composed from differentiable tensor ops: the definition
/// the fused op of `knots` follows, differentiated when its backward is (gradients of gradients).
let knotsComposite (bound: float) (minSize: float) (raw: Tensor) =
    checkKnots minSize raw
    let k = raw.shape[raw.dim - 1]
    let sizes = raw.softmax(-1) * (1.0 - minSize * float k) + minSize
    let inner = sizes.cumsum(-1).narrow(-1, 0, k - 1) * (2.0 * bound) - bound
    inner.pad(last raw.dim 1, last raw.dim 0, -bound).pad(last raw.dim 0, last raw.dim 1, bound)

/// `knotsComposite` as one fused op (RawTensor.SplineKnots, CPU and CUDA) with a hand-written fused
/// backward; an enclosing differentiation level that records the backward gets the composite's.
let knots (bound: float) (minSize: float) (raw: Tensor) =
    checkKnots minSize raw
    let outputs =
        Tensor.custom(
            [| raw |],
            (fun r -> [| r[0].SplineKnots(bound, minSize) |]),
            fun primals _ adjoints ->
                if primals[0].isConst && adjoints[0].isConst then
                    [| Tensor.ofRaw (primals[0].raw.SplineKnotsBackward(adjoints[0].raw, bound, minSize)) |]
                else
                    let _, pullback = Ad.vjpN (fun t -> [| knotsComposite bound minSize t[0] |]) primals
                    pullback adjoints)
    outputs[0]

/// The bin sizes [..., K] between knots [..., K+1].
let steps (knots: Tensor) =
    let k = knots.shape[knots.dim - 1] - 1
    knots.narrow(-1, 1, k) - knots.narrow(-1, 0, k)

/// Each value's bin [..., d, 1] among knots [..., d, K+1]: how many inner knots lie at or below it,
/// in 0..K−1 (the right end lands in the last bin).
let binOf (knots: Tensor) (v: Tensor) =
    let k = knots.shape[knots.dim - 1] - 1
    knots.narrow(-1, 1, k - 1).searchsorted(v.unsqueeze(-1), right = true)

/// The entries [..., d] of per-bin values [..., d, n ≥ K] at the bins `index` [..., d, 1].
let pick (index: Tensor) (t: Tensor) = t.gather(t.dim - 1, index).squeeze(t.dim - 1)

/// The first K of K+1 knot values [..., K] (the left end of each bin).
let lefts (knots: Tensor) = knots.narrow(-1, 0, knots.shape[knots.dim - 1] - 1)

/// The last K of K+1 knot values [..., K] (the right end of each bin).
let rights (knots: Tensor) = knots.narrow(-1, 1, knots.shape[knots.dim - 1] - 1)

/// Where v lies in [−bound, bound], and v with the points outside replaced by 0: the spline math
/// runs on the safe values only, so no masked branch can put a NaN into a gradient.
let insideAndSafe (bound: float) (v: Tensor) =
    let inside = v.ge(v.scalarLike(-bound)) * v.le(v.scalarLike(bound))
    inside, Tensor.where(inside, v, v.zerosLike())

/// The spline's values inside the interval and the identity (log-derivative 0) outside.
let withIdentityTails (inside: Tensor) (v: Tensor) (mapped: Tensor, logDerivative: Tensor) =
    Tensor.where(inside, mapped, v), Tensor.where(inside, logDerivative, v.zerosLike())

/// The raw parameters [..., d, count] checked against inputs [..., d].
let checkRaw (count: int) (v: Tensor) (raw: Tensor) =
    let expected = Array.append v.shape [| count |]
    if raw.shape <> expected then
        invalidArg (nameof raw) $"expected spline parameters of shape {Shape.show expected} for inputs {Shape.show v.shape}, got {Shape.show raw.shape}"

/// Consecutive slices of the raw parameters' last dimension, of the given sizes.
let split (sizes: int list) (raw: Tensor) =
    let d = raw.dim - 1
    Guard.that (nameof raw) (raw.shape[d] = List.sum sizes) $"expected {List.sum sizes} spline parameters in the last dimension, got {Shape.show raw.shape}"
    let starts = List.scan (+) 0 sizes
    List.map2 (fun start size -> raw.narrow(d, start, size)) (List.take sizes.Length starts) sizes

/// The root (−b + √(b² − 4ac)) / 2a of a·t² + b·t + c, as 2c / (−b − √disc) where b ≥ 0 (defined at
/// a = 0) and as written where b < 0, so neither form subtracts nearly equal numbers (distrax's
/// safe root). A discriminant ≤ 0 counts as 0 and its square root is taken of a safe value, and
/// each form's denominator is sanitised, so a double root has finite value and gradients.
let quadraticRoot (a: Tensor) (b: Tensor) (c: Tensor) =
    let zeros = b.zerosLike()
    let disc = b.square() - 4.0 * a * c
    let positive = disc.gt zeros
    let root = Tensor.where(positive, Tensor.where(positive, disc, disc.onesLike()).sqrt(), zeros)
    let nonNegative = b.ge zeros
    let denominator = -b - root
    let safeDenominator = Tensor.where(denominator.ne zeros, denominator, zeros - 1.0)
    let twoA = a * 2.0
    let safeTwoA = Tensor.where(twoA.ne zeros * (1.0 - nonNegative), twoA, zeros + 1.0)
    Tensor.where(nonNegative, 2.0 * c / safeDenominator, (-b + root) / safeTwoA)
