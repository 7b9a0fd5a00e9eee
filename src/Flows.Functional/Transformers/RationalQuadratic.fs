/// The monotone rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows") as an
/// element-wise transformer. On [−B, B], K bins with knots (x_k, y_k) and knot derivatives δ_k:
///   y = y_k + h_k (s_k ξ² + δ_k ξ(1−ξ)) / (s_k + (δ_{k+1} + δ_k − 2s_k) ξ(1−ξ)),
///   ξ = (x − x_k)/w_k, s_k = h_k/w_k; the identity (linear tails) outside [−B, B].
/// Bin widths, heights and inner derivatives have lower bounds (1e-3 by default); the end
/// derivatives are 1 so the slope is continuous with the tails; zero raw parameters give the identity.
/// Inputs are sanitised with `where` before any branch that could divide by zero or take a root of a
/// negative number, so no NaN reaches values or gradients (engine.md §3.1).
module Flows.Transformers.RationalQuadratic

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

/// Raw parameters per transformed feature: K widths, K heights, K − 1 inner derivatives.
let parameterCount (bins: int) = 3 * bins - 1

/// Knots [..., K+1] from unnormalised bin sizes [..., K]: minSize + (1 − K·minSize)·softmax, summed
/// with a leading zero and mapped to [−bound, bound]; the ends are set to exactly ±bound.
let knots (bound: float) (minSize: float) (raw: Tensor) =
    let k = raw.shape[raw.dim - 1]
    Guard.that (nameof minSize) (minSize >= 0.0 && minSize * float k < 1.0) $"{k} bins of at least {minSize} do not fit in the interval"
    let sizes = raw.softmax(-1) * (1.0 - minSize * float k) + minSize
    let inner = sizes.cumsum(-1).narrow(-1, 0, k - 1) * (2.0 * bound) - bound
    let last (n: int) = Array.init raw.dim (fun i -> if i = raw.dim - 1 then n else 0)
    inner.pad(last 1, last 0, -bound).pad(last 0, last 1, bound)

// softplus(u + shift) + min = 1 at u = 0: zero parameters give slope 1 everywhere
let private derivativeShift (minDerivative: float) = log (exp (1.0 - minDerivative) - 1.0)

/// Derivatives at the K+1 knots [..., K+1] from raw inner values [..., K−1]: 1 at both ends,
/// softplus(u + log(e^{1−min} − 1)) + min inside (so u = 0 gives 1).
let derivatives (minDerivative: float) (raw: Tensor) =
    let last (n: int) = Array.init raw.dim (fun i -> if i = raw.dim - 1 then n else 0)
    ((raw + derivativeShift minDerivative).softplus() + minDerivative).pad(last 1, last 1, 1.0)

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

let private checkShapes (config: Config) (x: Tensor) (widths: Tensor) (heights: Tensor) (derivatives: Tensor) =
    let k = config.Bins
    Guard.that (nameof config.Bins) (k >= 2) $"a rational-quadratic spline needs at least 2 bins, got {k}"
    Guard.positiveFloat (nameof config.Bound) config.Bound
    let expect (name: string) (t: Tensor) (n: int) =
        if t.shape <> Array.append x.shape [| n |] then
            invalidArg name $"expected {name} of shape {Shape.show (Array.append x.shape [| n |])} for inputs {Shape.show x.shape}, got {Shape.show t.shape}"
    expect (nameof widths) widths k
    expect (nameof heights) heights k
    expect (nameof derivatives) derivatives (k - 1)

/// The raw parameters [..., 3K−1] split into widths, heights [..., K] and inner derivatives [..., K−1].
let split (bins: int) (raw: Tensor) =
    let d = raw.dim - 1
    Guard.that (nameof raw) (raw.shape[d] = parameterCount bins) $"expected {parameterCount bins} spline parameters in the last dimension, got {Shape.show raw.shape}"
    raw.narrow(d, 0, bins), raw.narrow(d, bins, bins), raw.narrow(d, 2 * bins, bins - 1)

// The bin's data, gathered at the bin of each sanitised value v ∈ [−B, B] among `edges` [..., K+1]:
// the count of inner edges at or below v, in 0..K−1 (v = B lands in the last bin).
type private Bin =
    { X0: Tensor; Width: Tensor; Y0: Tensor; Height: Tensor; D0: Tensor; D1: Tensor }

let private bin (k: int) (edges: Tensor) (xKnots: Tensor) (yKnots: Tensor) (ds: Tensor) (v: Tensor) =
    let last = edges.dim - 1
    let index = edges.narrow(last, 1, k - 1).searchsorted(v.unsqueeze(-1), right = true)
    let pick (t: Tensor) = t.gather(last, index).squeeze last
    let step (t: Tensor) = t.narrow(last, 1, k) - t.narrow(last, 0, k)
    { X0 = pick (xKnots.narrow(last, 0, k)); Width = pick (step xKnots); Y0 = pick (yKnots.narrow(last, 0, k)); Height = pick (step yKnots)
      D0 = pick (ds.narrow(last, 0, k)); D1 = pick (ds.narrow(last, 1, k)) }

// log dy/dx at relative position ξ: log(s²(δ₁ξ² + 2sξ(1−ξ) + δ₀(1−ξ)²)) − 2 log(denominator)
let private logDerivative (b: Bin) (xi: Tensor) =
    let s = b.Height / b.Width
    let t = xi * (1.0 - xi)
    let denominator = s + (b.D0 + b.D1 - 2.0 * s) * t
    s.log() * 2.0 + (b.D1 * xi.square() + 2.0 * s * t + b.D0 * (1.0 - xi).square()).log() - denominator.log() * 2.0

let private insideAndSafe (bound: float) (v: Tensor) =
    let inside = v.ge(v.scalarLike(-bound)) * v.le(v.scalarLike(bound))
    inside, Tensor.where(inside, v, v.zerosLike())

/// y = spline(x) element-wise for x [..., d] with widths, heights [..., d, K] and inner
/// derivatives [..., d, K−1]; returns y and log dy/dx [..., d] (0 in the tails).
let forward (config: Config) (x: Tensor) (widths: Tensor) (heights: Tensor) (derivatives': Tensor) =
    checkShapes config x widths heights derivatives'
    let inside, xs = insideAndSafe config.Bound x
    let xk = knots config.Bound config.MinWidth widths
    let b = bin config.Bins xk xk (knots config.Bound config.MinHeight heights) (derivatives config.MinDerivative derivatives') xs
    let s = b.Height / b.Width
    let xi = ((xs - b.X0) / b.Width).clamp(0.0, 1.0)
    let t = xi * (1.0 - xi)
    let y = b.Y0 + b.Height * (s * xi.square() + b.D0 * t) / (s + (b.D0 + b.D1 - 2.0 * s) * t)
    Tensor.where(inside, y, x), Tensor.where(inside, logDerivative b xi, x.zerosLike())

/// x = spline⁻¹(y) element-wise (the stable root of the bin's quadratic, clamped to the bin);
/// returns x and log dx/dy [..., d] (0 in the tails).
let inverse (config: Config) (y: Tensor) (widths: Tensor) (heights: Tensor) (derivatives': Tensor) =
    checkShapes config y widths heights derivatives'
    let inside, ys = insideAndSafe config.Bound y
    let yk = knots config.Bound config.MinHeight heights
    let b = bin config.Bins yk (knots config.Bound config.MinWidth widths) yk (derivatives config.MinDerivative derivatives') ys
    let s = b.Height / b.Width
    let dy = ys - b.Y0
    let e = b.D0 + b.D1 - 2.0 * s
    let xi = (quadraticRoot (b.Height * (s - b.D0) + dy * e) (b.Height * b.D0 - dy * e) (-(s * dy))).clamp(0.0, 1.0)
    Tensor.where(inside, b.X0 + xi * b.Width, y), Tensor.where(inside, -(logDerivative b xi), y.zerosLike())
