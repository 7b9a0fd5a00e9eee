/// The monotone piecewise-linear spline (Müller et al. 2019, "Neural Importance Sampling") as an
/// element-wise transformer. On [−B, B], K bins with knots (x_k, y_k):
///   y = y_k + h_k (x − x_k)/w_k,   log dy/dx = log(h_k/w_k)   (a piecewise-constant density);
/// heights h = 2B(m + (1 − K·m)·softmax) with m = MinHeight, widths likewise (learnt) or all 2B/K (fixed).
/// Tails: the identity outside [−B, B], as nflows' linear tails. The spline maps [−B, B] onto itself,
/// so the map is continuous and a bijection on R, but its slope jumps at ±B (the end bins' slopes
/// h/w are free, as in the paper; pinning them to 1 would cost two bins' freedom). Zero raw
/// parameters give equal widths and heights: the identity. Slopes are at least
/// MinHeight/(1 − (K−1)·MinWidth), the minimum derivative; inputs are sanitised before the bin math.
module Flows.Transformers.PiecewiseLinear

open Flows
open Flows.Tensors

/// Whether the bin widths are learnt or fixed at 2B/K.
[<RequireQualifiedAccess>]
type Widths =
    | Learnt
    | Fixed

/// Raw parameters per transformed feature: K heights, preceded by K widths when they are learnt.
let parameterCount (widths: Widths) (bins: int) =
    match widths with
    | Widths.Learnt -> 2 * bins
    | Widths.Fixed -> bins

/// The x and y knots [..., K+1] from raw parameters [..., K or 2K].
let knots (widths: Widths) (config: Spline.Config) (raw: Tensor) =
    Spline.checkConfig "piecewise-linear" 2 config
    let k = config.Bins
    match widths with
    | Widths.Learnt ->
        match Spline.split [ k; k ] raw with
        | [ w; h ] -> Spline.knots config.Bound config.MinWidth w, Spline.knots config.Bound config.MinHeight h
        | parts -> invalidOp $"split into {parts.Length} parts"
    | Widths.Fixed ->
        let h = (Spline.split [ k ] raw).Head
        // softmax of zeros: K equal bins, with the same rounding as learnt widths at zero
        Spline.knots config.Bound 0.0 (h.zerosLike().noDiff()), Spline.knots config.Bound config.MinHeight h

// The bin of each sanitised v among `edges`: its left ends and sizes in x and in y.
let private bin (edges: Tensor) (xk: Tensor) (yk: Tensor) (v: Tensor) =
    let pick = Spline.pick (Spline.binOf edges v)
    pick (Spline.lefts xk), pick (Spline.steps xk), pick (Spline.lefts yk), pick (Spline.steps yk)

/// y = spline(x) element-wise for x [..., d] and raw parameters [..., d, P]; returns y and log dy/dx.
let forward (widths: Widths) (config: Spline.Config) (x: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount widths config.Bins) x raw
    let inside, xs = Spline.insideAndSafe config.Bound x
    let xk, yk = knots widths config raw
    let x0, w, y0, h = bin xk xk yk xs
    let alpha = ((xs - x0) / w).clamp(0.0, 1.0)
    Spline.withIdentityTails inside x (y0 + alpha * h, h.log() - w.log())

/// x = spline⁻¹(y) element-wise; returns x and log dx/dy.
let inverse (widths: Widths) (config: Spline.Config) (y: Tensor) (raw: Tensor) =
    Spline.checkRaw (parameterCount widths config.Bins) y raw
    let inside, ys = Spline.insideAndSafe config.Bound y
    let xk, yk = knots widths config raw
    let x0, w, y0, h = bin yk xk yk ys
    let alpha = ((ys - y0) / h).clamp(0.0, 1.0)
    Spline.withIdentityTails inside y (x0 + alpha * w, w.log() - h.log())

/// The spline as a transformer (checks the bins and bound now, so a layer fails when built).
let transformer (widths: Widths) (config: Spline.Config) : Transformer =
    Spline.checkConfig "piecewise-linear" 2 config
    let name = match widths with Widths.Learnt -> "linear" | Widths.Fixed -> "linear-fixed"
    Transformer.stateless name (parameterCount widths config.Bins) (forward widths config) (inverse widths config)
