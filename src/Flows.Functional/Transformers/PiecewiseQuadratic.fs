/// The monotone piecewise-quadratic spline (Müller et al. 2019, "Neural Importance Sampling") as an
/// element-wise transformer: a continuous piecewise-linear density on [−B, B] with vertex values v_k
/// at the K+1 knots x_k, integrated. In bin k, with α = (x − x_k)/w_k:
///   y = y_k + w_k (v_k α + (v_{k+1} − v_k) α²/2),   log dy/dx = log(v_k + (v_{k+1} − v_k) α);
/// inverse: the stable root of (w(v₁ − v₀)/2) α² + w v₀ α − (y − y_k) = 0, whose discriminant is at
/// least (w·min(v₀, v₁))² on the bin, so it never has a double root there.
/// Tails: the identity outside [−B, B]. Where the paper normalises all K+1 vertices, here v₀ = v_K = 1
/// so the slope is continuous with the tails, and the K−1 inner vertices are normalised so the
/// density integrates to 2B: v_j = m + (1 − m)·M·softmax(u)_j / Σ_i μ_i softmax(u)_i, with
/// μ_j = (w_{j−1} + w_j)/2, M = Σ μ_j and m = MinDerivative; zero raw parameters give v = 1, the
/// identity. Bin heights are at least m·w_k (MinHeight is not used); inputs are sanitised first.
module Flows.Transformers.PiecewiseQuadratic

open Flows
open Flows.Tensors

/// Raw parameters per transformed feature: K widths, K − 1 inner vertex densities.
let parameterCount (bins: int) = 2 * bins - 1

// pad widths that touch only the last dimension
let private last (rank: int) (n: int) = Array.init rank (fun i -> if i = rank - 1 then n else 0)

/// The x knots, y knots and vertex densities [..., K+1] from raw parameters [..., 2K−1].
let knotsAndDensities (config: Spline.Config) (raw: Tensor) =
    Spline.checkConfig "piecewise-quadratic" 2 config
    Guard.that (nameof config.MinDerivative) (config.MinDerivative >= 0.0 && config.MinDerivative < 1.0) $"the minimum density must be in [0, 1), got {config.MinDerivative}"
    let k, m = config.Bins, config.MinDerivative
    match Spline.split [ k; k - 1 ] raw with
    | [ rawWidths; rawDensities ] ->
        let xk = Spline.knots config.Bound config.MinWidth rawWidths
        let w = Spline.steps xk
        let mu = (Spline.lefts w + Spline.rights w) * 0.5
        let p = rawDensities.softmax(-1)
        let inner = m + (1.0 - m) * mu.sum(-1, true) * p / (mu * p).sum(-1, true)
        let v = inner.pad(last inner.dim 1, last inner.dim 1, 1.0)
        xk, Spline.edges config.Bound (w * (Spline.lefts v + Spline.rights v) * 0.5), v
    | parts -> invalidOp $"split into {parts.Length} parts"

// The bin of each sanitised value among `edges`: left ends, width and the two vertex densities.
let private bin (edges: Tensor) (xk: Tensor) (yk: Tensor) (v: Tensor) (at: Tensor) =
    let pick = Spline.pick (Spline.binOf edges at)
    pick (Spline.lefts xk), pick (Spline.steps xk), pick (Spline.lefts yk), pick (Spline.lefts v), pick (Spline.rights v)

/// y = spline(x) element-wise for x [..., d] and raw parameters [..., d, 2K−1]; returns y and log dy/dx.
let forward (config: Spline.Config) (x: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount config.Bins) x raw
    let inside, xs = Spline.insideAndSafe config.Bound x
    let xk, yk, v = knotsAndDensities config raw
    let x0, w, y0, v0, v1 = bin xk xk yk v xs
    let alpha = ((xs - x0) / w).clamp(0.0, 1.0)
    let slope = v0 + (v1 - v0) * alpha
    Spline.withIdentityTails inside x (y0 + w * alpha * (v0 + slope) * 0.5, slope.log())

/// x = spline⁻¹(y) element-wise (the stable root, clamped to the bin); returns x and log dx/dy.
let inverse (config: Spline.Config) (y: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount config.Bins) y raw
    let inside, ys = Spline.insideAndSafe config.Bound y
    let xk, yk, v = knotsAndDensities config raw
    let x0, w, y0, v0, v1 = bin yk xk yk v ys
    let alpha = (Spline.quadraticRoot (w * (v1 - v0) * 0.5) (w * v0) (y0 - ys)).clamp(0.0, 1.0)
    Spline.withIdentityTails inside y (x0 + alpha * w, -((v0 + (v1 - v0) * alpha).log()))

/// The spline as a transformer (checks the bins and bound now, so a layer fails when built).
let transformer (config: Spline.Config) : Transformer =
    Spline.checkConfig "piecewise-quadratic" 2 config
    Transformer.stateless "quadratic" (parameterCount config.Bins) (forward config) (inverse config)
