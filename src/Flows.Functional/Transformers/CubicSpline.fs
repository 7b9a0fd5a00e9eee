/// The monotone cubic spline (Durkan et al. 2019, "Cubic-Spline Flows") as an element-wise
/// transformer: a cubic Hermite interpolant through K+1 knots on [−B, B] with knot derivatives d_k.
/// In bin k, with ξ = (x − x_k)/w_k and slope s_k = h_k/w_k:
///   y = y_k + w_k (d_k ξ + (3s_k − 2d_k − d_{k+1}) ξ² + (d_k + d_{k+1} − 2s_k) ξ³).
/// Inner derivatives follow Steffen (1990), d_k = min(2s_{k−1}, 2s_k, (s_{k−1}w_k + s_k w_{k−1})/(w_{k−1} + w_k)),
/// so d/s ≤ 2 at every inner knot; the end derivatives are 1 (slope continuous with the identity
/// tails), which keeps the spline monotone (Fritsch–Carlson: d/s ≤ 3) because the end bins' slopes
/// are kept above 1/3: their heights are w/3 plus a share of the rest. The heights are
///   h = f + m·c + (1 − m)·Σc · c·softmax(u) / Σ c·softmax(u),  f = w/3 in the end bins (0 inside),
/// c = w − f, m = MinHeight, so zero raw parameters give h = w: slope 1 everywhere, the identity.
/// Derivatives are bounded below through the minimum widths and heights (MinDerivative is not used).
/// Inverse: bisection for ξ in [0, 1] to `inverseTolerance`, then one Newton step that carries the
/// implicit-function gradient; inputs are sanitised before the bin math, the identity outside [−B, B].
module Flows.Transformers.CubicSpline

open Flows
open Flows.Tensors

/// Raw parameters per transformed feature: K widths, K heights.
let parameterCount (bins: int) = 2 * bins

/// The bisection's tolerance on the relative position ξ inside a bin.
let inverseTolerance = 1e-12

// pad widths that touch only the last dimension
let private last (rank: int) (n: int) = Array.init rank (fun i -> if i = rank - 1 then n else 0)

/// The x knots, y knots and knot derivatives [..., K+1] from raw parameters [..., 2K].
let knotsAndDerivatives (config: Spline.Config) (raw: Tensor) =
    Spline.checkConfig "cubic" 2 config
    let k, m = config.Bins, config.MinHeight
    Guard.that (nameof config.MinHeight) (m >= 0.0 && m < 1.0) $"the minimum height share must be in [0, 1), got {m}"
    match Spline.split [ k; k ] raw with
    | [ rawWidths; rawHeights ] ->
        let xk = Spline.knots config.Bound config.MinWidth rawWidths
        let w = Spline.steps xk
        let r = w.dim
        let floor = (w.narrow(-1, 0, 1) / 3.0).pad(last r 0, last r (k - 1)) + (w.narrow(-1, k - 1, 1) / 3.0).pad(last r (k - 1), last r 0)
        let c = w - floor
        let p = rawHeights.softmax(-1)
        let h = floor + m * c + (1.0 - m) * c.sum(-1, true) * c * p / (c * p).sum(-1, true)
        let s = h / w
        let sl, sr, wl, wr = Spline.lefts s, Spline.rights s, Spline.lefts w, Spline.rights w
        let inner = (2.0 * sl).min(2.0 * sr).min((sl * wr + sr * wl) / (wl + wr))
        xk, Spline.edges config.Bound h, inner.pad(last r 1, last r 1, 1.0)
    | parts -> invalidOp $"split into {parts.Length} parts"

// One bin's cubic in units of its width: g(ξ) = d₀ξ + bξ² + aξ³, so y = y_k + w·g(ξ).
type private Bin =
    { X0: Tensor; Width: Tensor; Y0: Tensor; D0: Tensor; B: Tensor; A: Tensor }

    member b.Value(xi: Tensor) = xi * (b.D0 + xi * (b.B + xi * b.A))
    member b.Slope(xi: Tensor) = b.D0 + xi * (2.0 * b.B + 3.0 * xi * b.A)
    member b.Constant = { X0 = b.X0.noDiff(); Width = b.Width.noDiff(); Y0 = b.Y0.noDiff(); D0 = b.D0.noDiff(); B = b.B.noDiff(); A = b.A.noDiff() }

let private bin (edges: Tensor) (xk: Tensor) (yk: Tensor) (ds: Tensor) (v: Tensor) =
    let pick = Spline.pick (Spline.binOf edges v)
    let w = pick (Spline.steps xk)
    let s = pick (Spline.steps yk) / w
    let d0, d1 = pick (Spline.lefts ds), pick (Spline.rights ds)
    { X0 = pick (Spline.lefts xk); Width = w; Y0 = pick (Spline.lefts yk); D0 = d0; B = 3.0 * s - 2.0 * d0 - d1; A = d0 + d1 - 2.0 * s }

/// y = spline(x) element-wise for x [..., d] and raw parameters [..., d, 2K]; returns y and log dy/dx.
let forward (config: Spline.Config) (x: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount config.Bins) x raw
    let inside, xs = Spline.insideAndSafe config.Bound x
    let xk, yk, ds = knotsAndDerivatives config raw
    let b = bin xk xk yk ds xs
    let xi = ((xs - b.X0) / b.Width).clamp(0.0, 1.0)
    Spline.withIdentityTails inside x (b.Y0 + b.Width * b.Value xi, (b.Slope xi).log())

/// x = spline⁻¹(y) element-wise (bisection and a Newton step); returns x and log dx/dy.
let inverse (config: Spline.Config) (y: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount config.Bins) y raw
    let inside, ys = Spline.insideAndSafe config.Bound y
    let xk, yk, ds = knotsAndDerivatives config raw
    let b = bin yk xk yk ds ys
    let target = (ys - b.Y0) / b.Width
    let fixedBin = b.Constant
    let root = RootFind.bisect fixedBin.Value (target.noDiff()) (ys.zerosLike()) (ys.onesLike()) inverseTolerance
    let xi = (RootFind.newtonStep b.Value b.Slope target root).clamp(0.0, 1.0)
    Spline.withIdentityTails inside y (b.X0 + xi * b.Width, -((b.Slope xi).log()))

/// The spline as a transformer (checks the bins and bound now, so a layer fails when built).
let transformer (config: Spline.Config) : Transformer =
    Spline.checkConfig "cubic" 2 config
    { Transformer.stateless "cubic" (parameterCount config.Bins) (forward config) (inverse config) with
        InverseKind = InverseKind.Iterative inverseTolerance }
