/// The monotone rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows") as an
/// element-wise transformer. On [−B, B], K bins with knots (x_k, y_k) and knot derivatives δ_k:
///   y = y_k + h_k (s_k ξ² + δ_k ξ(1−ξ)) / (s_k + (δ_{k+1} + δ_k − 2s_k) ξ(1−ξ)),
///   ξ = (x − x_k)/w_k, s_k = h_k/w_k; the identity (linear tails) outside [−B, B].
/// Bin widths, heights and inner derivatives have lower bounds (1e-3 by default); the end
/// derivatives are 1 so the slope is continuous with the tails; zero raw parameters give the identity.
/// Inputs are sanitised with `where` before any branch that could divide by zero or take a root of a
/// negative number, so no NaN reaches values or gradients. Evaluated by one fused
/// op from the knots (CPU and CUDA kernels) whose definition is `composite`.
module Flows.Transformers.RationalQuadratic

open Flows
open Flows.Tensors

/// Raw parameters per transformed feature: K widths, K heights, K − 1 inner derivatives.
let parameterCount (bins: int) = 3 * bins - 1

// softplus(u + shift) + min = 1 at u = 0: zero parameters give slope 1 everywhere
let private derivativeShift (minDerivative: float) = log (exp (1.0 - minDerivative) - 1.0)

/// Derivatives at the K+1 knots [..., K+1] from raw inner values [..., K−1]: 1 at both ends,
/// softplus(u + log(e^{1−min} − 1)) + min inside (so u = 0 gives 1).
let derivatives (minDerivative: float) (raw: Tensor) =
    let last (n: int) = Array.init raw.dim (fun i -> if i = raw.dim - 1 then n else 0)
    ((raw + derivativeShift minDerivative).softplus() + minDerivative).pad(last 1, last 1, 1.0)

let private checkShapes (config: Spline.Config) (x: Tensor) (widths: Tensor) (heights: Tensor) (derivatives: Tensor) =
    let k = config.Bins
    Spline.checkConfig "rational-quadratic" 2 config
    let expect (name: string) (t: Tensor) (n: int) =
        if t.shape <> Array.append x.shape [| n |] then
            invalidArg name $"expected {name} of shape {Shape.show (Array.append x.shape [| n |])} for inputs {Shape.show x.shape}, got {Shape.show t.shape}"
    expect (nameof widths) widths k
    expect (nameof heights) heights k
    expect (nameof derivatives) derivatives (k - 1)

/// The raw parameters [..., 3K−1] split into widths, heights [..., K] and inner derivatives [..., K−1].
let split (bins: int) (raw: Tensor) =
    match Spline.split [ bins; bins; bins - 1 ] raw with
    | [ widths; heights; derivatives ] -> widths, heights, derivatives
    | parts -> invalidOp $"split into {parts.Length} parts"

// The bin's data, gathered at the bin of each sanitised value v ∈ [−B, B] among `edges` [..., K+1].
type private Bin =
    { X0: Tensor; Width: Tensor; Y0: Tensor; Height: Tensor; D0: Tensor; D1: Tensor }

let private bin (edges: Tensor) (xKnots: Tensor) (yKnots: Tensor) (ds: Tensor) (v: Tensor) =
    let pick = Spline.pick (Spline.binOf edges v)
    { X0 = pick (Spline.lefts xKnots); Width = pick (Spline.steps xKnots); Y0 = pick (Spline.lefts yKnots); Height = pick (Spline.steps yKnots)
      D0 = pick (Spline.lefts ds); D1 = pick (Spline.rights ds) }

// log dy/dx at relative position ξ: log(s²(δ₁ξ² + 2sξ(1−ξ) + δ₀(1−ξ)²)) − 2 log(denominator)
let private logDerivative (b: Bin) (xi: Tensor) =
    let s = b.Height / b.Width
    let t = xi * (1.0 - xi)
    let denominator = s + (b.D0 + b.D1 - 2.0 * s) * t
    s.log() * 2.0 + (b.D1 * xi.square() + 2.0 * s * t + b.D0 * (1.0 - xi).square()).log() - denominator.log() * 2.0

/// The spline at v [..., d] from its knots xKnots, yKnots and knot derivatives [..., d, K+1] (or its
/// inverse, the stable root of the bin's quadratic): the mapped values and the log-derivatives
/// [..., d], the identity and 0 outside [−B, B]. Composed from differentiable tensor ops: the
/// definition the fused op follows, differentiated when its backward is (gradients of gradients).
let composite (bound: float) (inverse: bool) (v: Tensor) (xKnots: Tensor) (yKnots: Tensor) (derivatives: Tensor) =
    let inside, vs = Spline.insideAndSafe bound v
    let b = bin (if inverse then yKnots else xKnots) xKnots yKnots derivatives vs
    let s = b.Height / b.Width
    if inverse then
        let dy = vs - b.Y0
        let e = b.D0 + b.D1 - 2.0 * s
        let xi = (Spline.quadraticRoot (b.Height * (s - b.D0) + dy * e) (b.Height * b.D0 - dy * e) (-(s * dy))).clamp(0.0, 1.0)
        Spline.withIdentityTails inside v (b.X0 + xi * b.Width, -(logDerivative b xi))
    else
        let xi = ((vs - b.X0) / b.Width).clamp(0.0, 1.0)
        let t = xi * (1.0 - xi)
        let y = b.Y0 + b.Height * (s * xi.square() + b.D0 * t) / (s + (b.D0 + b.D1 - 2.0 * s) * t)
        Spline.withIdentityTails inside v (y, logDerivative b xi)

/// `composite` as one fused op (RawTensor.RationalQuadratic) with a hand-written fused backward; an
/// enclosing differentiation level that records the backward gets `composite`'s instead.
let evaluate (bound: float) (inverse: bool) (v: Tensor) (xKnots: Tensor) (yKnots: Tensor) (derivatives: Tensor) =
    // the kernels index knot row e for element e: anything but equal leading shapes would read past them
    let knots = if xKnots.dim = v.dim + 1 then xKnots.shape[v.dim] else 0
    for name, t in [ nameof xKnots, xKnots; nameof yKnots, yKnots; nameof derivatives, derivatives ] do
        if knots < 2 || t.shape <> Array.append v.shape [| knots |] then
            invalidArg name $"expected {name} of shape {Shape.show (Array.append v.shape [| max knots 2 |])} (K + 1 ≥ 2 knots per value) for values {Shape.show v.shape}, got {Shape.show t.shape}"
    let outputs =
        Tensor.custom(
            [| v; xKnots; yKnots; derivatives |],
            (fun r -> let mapped, logDerivatives = r[0].RationalQuadratic(r[1], r[2], r[3], bound, inverse) in [| mapped; logDerivatives |]),
            fun primals _ adjoints ->
                if Array.forall (fun (t: Tensor) -> t.isConst) (Array.append primals adjoints) then
                    let gv, gx, gy, gd = primals[0].raw.RationalQuadraticBackward(primals[1].raw, primals[2].raw, primals[3].raw, bound, inverse, adjoints[0].raw, adjoints[1].raw)
                    [| Tensor.ofRaw gv; Tensor.ofRaw gx; Tensor.ofRaw gy; Tensor.ofRaw gd |]
                else
                    let _, pullback = Ad.vjpN (fun t -> let mapped, logDerivatives = composite bound inverse t[0] t[1] t[2] t[3] in [| mapped; logDerivatives |]) primals
                    pullback adjoints)
    outputs[0], outputs[1]

/// y = spline(x) element-wise for x [..., d] with widths, heights [..., d, K] and inner
/// derivatives [..., d, K−1]; returns y and log dy/dx [..., d] (0 in the tails).
let forward (config: Spline.Config) (x: Tensor) (widths: Tensor) (heights: Tensor) (derivatives': Tensor) =
    checkShapes config x widths heights derivatives'
    let xKnots = Spline.knots config.Bound config.MinWidth widths
    let yKnots = Spline.knots config.Bound config.MinHeight heights
    evaluate config.Bound false x xKnots yKnots (derivatives config.MinDerivative derivatives')

/// x = spline⁻¹(y) element-wise (the stable root of the bin's quadratic, clamped to the bin);
/// returns x and log dx/dy [..., d] (0 in the tails).
let inverse (config: Spline.Config) (y: Tensor) (widths: Tensor) (heights: Tensor) (derivatives': Tensor) =
    checkShapes config y widths heights derivatives'
    let xKnots = Spline.knots config.Bound config.MinWidth widths
    let yKnots = Spline.knots config.Bound config.MinHeight heights
    evaluate config.Bound true y xKnots yKnots (derivatives config.MinDerivative derivatives')

/// The spline as a transformer over raw parameters [..., d, 3K−1] (checks the bins and bound now).
let transformer (config: Spline.Config) : Transformer =
    Spline.checkConfig "rational-quadratic" 2 config
    let apply map (v: Tensor) (raw: Tensor) =
        Spline.checkRaw (parameterCount config.Bins) v raw
        let widths, heights, derivatives = split config.Bins raw
        map config v widths heights derivatives
    Transformer.stateless "rq" (parameterCount config.Bins) (apply forward) (apply inverse)

/// The x and y knots [..., K+1] that raw parameters [..., 3K−1] give.
let knots (config: Spline.Config) (raw: Tensor) =
    let widths, heights, _ = split config.Bins raw
    Spline.knots config.Bound config.MinWidth widths, Spline.knots config.Bound config.MinHeight heights
