/// Invertible residual block (i-ResNet, Behrmann et al. 2019; Residual Flow, Chen et al. 2019):
/// y = x + g(x), forward base → data, with Lip(g) < 1 by spectral normalisation of every linear layer
/// (W / max(1, σ/c), c < 1) and 1-Lipschitz activations. log|det J| = log|det(I + J_g(x))| = Σ_k
/// (−1)^{k+1} tr(J_gᵏ)/k, computed exactly (autodiff Jacobian), by a truncated Hutchinson power
/// series (biased) or by the Russian-roulette estimator (unbiased, Neumann-series gradient).
/// Inverse (data → base): the Banach fixed-point iteration x ← y − g(x), then one Newton step.
/// Conditional blocks read [x; c]: g(x, c) = … σ(SN(W₀)x + W_c c + b₀), so the context shifts the
/// first layer and g stays a contraction in x for every c (only the x-weights need normalising);
/// the fixed point, the Newton step and every log-det estimator run on x ↦ g(x, c).
module Flows.Bijectors.Residual

open Flows
open Flows.Tensors

/// Activations with Lipschitz constant 1.
[<RequireQualifiedAccess>]
type LipschitzActivation =
    /// x·σ(βx)/1.1 with β = softplus(learnt β): max slope 1.0998 < 1.1 (Chen et al. 2019).
    | LipSwish
    | Elu
    | Tanh

/// How the block computes log|det(I + J_g)|.
[<RequireQualifiedAccess>]
type ResidualLogDet =
    /// Per-row Jacobian by D VJPs and slogdet: exact, for low dimensions and the law suite.
    | Exact
    /// Σ_{k=1}^{n} (−1)^{k+1} tr(J_gᵏ)/k with one Hutchinson vector per row (i-ResNet): biased, the
    /// truncation error is at most D·cⁿ⁺¹/((n+1)(1−c)); differentiated through the series.
    | PowerSeries of terms: int
    /// `exactTerms` terms always plus N ~ Geometric(stop) extra ones, term k reweighted by
    /// 1/P(N ≥ k − exactTerms) (Residual Flow): unbiased; gradient by the Neumann series.
    | RussianRoulette of exactTerms: int * stop: float

/// Hyperparameters of a residual block.
type ResidualOptions =
    { Hidden: int list
      /// Spectral-norm bound c of every linear layer (Lip(g) ≤ c^layers ≤ c < 1).
      Coefficient: float
      Activation: LipschitzActivation
      LogDet: ResidualLogDet
      /// Power iterations from the stored vectors in a training pass (and per `Observe`).
      TrainIterations: int
      /// Power iterations from the stored vectors otherwise, so σ is accurate at evaluation.
      EvalIterations: int
      /// Fixed-point stopping rule: the largest step below this (or a few ulps of the data).
      Tolerance: float
      MaxIterations: int
      /// Terms of the Neumann series that applies (I + J_g)⁻¹ in the inverse's Newton step when the
      /// log-det is estimated (the exact mode inverts I + J_g densely).
      NeumannTerms: int }

/// Defaults: one hidden layer of 16, c = 0.9, LipSwish, exact log-det, 1 power iteration in
/// training and 20 at evaluation, fixed point to 1e-10 in at most 1000 iterations (resflows).
let defaults =
    { Hidden = [ 16 ]
      Coefficient = 0.9
      Activation = LipschitzActivation.LipSwish
      LogDet = ResidualLogDet.Exact
      TrainIterations = 1
      EvalIterations = 20
      Tolerance = 1e-10
      MaxIterations = 1000
      NeumannTerms = 20 }

let private activationName (a: LipschitzActivation) =
    match a with
    | LipschitzActivation.LipSwish -> "lipswish"
    | LipschitzActivation.Elu -> "elu"
    | LipschitzActivation.Tanh -> "tanh"

let private parseActivation (text: string) =
    match text with
    | "lipswish" -> LipschitzActivation.LipSwish
    | "elu" -> LipschitzActivation.Elu
    | "tanh" -> LipschitzActivation.Tanh
    | other -> invalidArg "text" $"unknown Lipschitz activation '{other}'"

let private logDetName (l: ResidualLogDet) =
    match l with
    | ResidualLogDet.Exact -> "exact"
    | ResidualLogDet.PowerSeries n -> $"power:{n}"
    | ResidualLogDet.RussianRoulette(n, p) -> $"""roulette:{n}:{p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"""

let private parseLogDet (text: string) =
    match text.Split ':' with
    | [| "exact" |] -> ResidualLogDet.Exact
    | [| "power"; n |] -> ResidualLogDet.PowerSeries(int n)
    | [| "roulette"; n; p |] -> ResidualLogDet.RussianRoulette(int n, float p)
    | _ -> invalidArg "text" $"unknown residual log-det '{text}'"

let private normalise (t: Tensor) = t / (t.norm() + 1e-30)

/// `n` power iterations v ← Wᵀu/‖·‖, u ← Wv/‖·‖ on constants, from the given vectors.
let powerIterate (n: int) (w: Tensor) (u: Tensor) (v: Tensor) =
    let w = w.noDiff()
    let mutable u, v = u.noDiff(), v.noDiff()
    for _ in 1..n do
        v <- normalise (w.transpose().matmul u)
        u <- normalise (w.matmul v)
    u, v

/// W / max(1, σ/c) with σ = uᵀWv (u, v constants, so the gradient is that of σ's estimate).
let spectralNormalise (c: float) (w: Tensor) (u: Tensor) (v: Tensor) =
    let sigma = (u * w.matmul v).sum()
    w / (sigma / c).max(sigma.onesLike())

let private layers (o: ResidualOptions) = o.Hidden.Length + 1

let private activate (o: ResidualOptions) (p: Params) (i: int) (h: Tensor) =
    match o.Activation with
    | LipschitzActivation.LipSwish -> h * (p[$"{i}.beta"].softplus() * h).sigmoid() / 1.1
    | LipschitzActivation.Elu -> h.elu 1.0
    | LipschitzActivation.Tanh -> h.tanh()

/// x ↦ g(x, c) for the contexts c of the rows (None: unconditional), with the weights normalised
/// once from `p` (parameters and buffers): `EvalIterations` power iterations from the stored
/// vectors, `TrainIterations` in training.
let networkFor (o: ResidualOptions) (p: Params) (training: bool) (c: Tensor option) : Tensor -> Tensor =
    let n = layers o
    let iterations = if training then o.TrainIterations else o.EvalIterations
    let weights =
        Array.init n (fun i ->
            let w = p[$"{i}.weight"]
            let u, v = powerIterate iterations w p[$"{i}.u"] p[$"{i}.v"]
            spectralNormalise o.Coefficient w u v, p[$"{i}.bias"])
    let shift = c |> Option.map (fun c -> c.matmul(p["context.weight"].transpose()))
    fun (x: Tensor) ->
        let mutable h = x
        for i in 0 .. n - 1 do
            let w, b = weights[i]
            h <- Tensor.linear(h, w, b)
            if i = 0 then shift |> Option.iter (fun s -> h <- h + s)
            if i < n - 1 then h <- activate o p i h
        h

/// g of an unconditional block as a function of rows (`networkFor` without a context).
let network (o: ResidualOptions) (p: Params) (training: bool) : Tensor -> Tensor = networkFor o p training None

let private floatEps (t: Tensor) = if t.dtype = Dtype.Float32 then 1.2e-7 else 2.3e-16

/// x_k of the iteration x ← y − g(x) from x₀ = y (for tests of the convergence rate).
let iterate (g: Tensor -> Tensor) (y: Tensor) (k: int) =
    let y = y.noDiff()
    let mutable x = y
    for _ in 1..k do
        x <- y - g x
    x

/// Solves x + g(x) = y by x ← y − g(x) from x₀ = y, on constants, until the largest step is below
/// `tolerance` (or 64 ulps of the data, the most the dtype resolves). A contraction with constant
/// L gets there at the rate Lᵏ; otherwise this raises rather than return a wrong point.
let fixedPoint (tolerance: float) (maxIterations: int) (g: Tensor -> Tensor) (y: Tensor) =
    let y = y.noDiff()
    if y.numel = 0 then y
    else
        let tol = max tolerance (64.0 * floatEps y * (1.0 + y.abs().max().toScalar()))
        let mutable x = y
        let mutable step = infinity
        let mutable k = 0
        while not (step <= tol) && k < maxIterations && not (System.Double.IsNaN step) do
            let next = y - g x
            step <- (next - x).abs().max().toScalar()
            x <- next
            k <- k + 1
        if not (step <= tol) then
            invalidOp $"residual inverse: the fixed-point iteration x ← y − g(x) did not converge: after {k} iterations the last step was {step}, above the tolerance {tol} (g must be a contraction: Lipschitz constant below 1)"
        x

/// I + J_g(x) per row ([B; D; D]) and log|det| of it ([B]); differentiable (nested VJPs, slogdet).
let exactLogDet (g: Tensor -> Tensor) (x: Tensor) =
    let a = Ad.batchJacobian g x + Tensor.eye(x.shape[1], x.dtype, x.device)
    a, snd (a.slogdet())

/// The truncated power series Σ_{k=1}^{n} (−1)^{k+1} vᵀJ_gᵏv/k per row, one Gaussian Hutchinson
/// vector v per row, by repeated VJPs (differentiable: the VJPs create graphs).
let powerSeriesLogDet (gen: Generator) (terms: int) (g: Tensor -> Tensor) (x: Tensor) =
    let _, pullback = Ad.vjp g x
    let v = gen.normal(x.shape, 0.0, 1.0, x.dtype, x.device)
    let mutable w = v
    let mutable total = Tensor.zeros([| x.shape[0] |], x.dtype, x.device)
    for k in 1..terms do
        w <- pullback w
        total <- total + (w * v).sum(1) * ((if k % 2 = 1 then 1.0 else -1.0) / float k)
    total

/// The number of extra terms N ~ Geometric(stop) on {0, 1, …}: P(N ≥ k) = (1 − stop)ᵏ.
let private geometric (gen: Generator) (stop: float) =
    let u = max ((gen.uniform([| 1 |], 0.0, 1.0, Dtype.Float64)).toScalar()) 1e-300
    int (floor (log u / log (1.0 - stop)))

/// The Russian-roulette estimate of log|det(I + J_g)| per row: `exactTerms` + N terms, term k
/// weighted by 1/P(N ≥ k − exactTerms). Its value uses `gConst` (g on constant parameters) on a
/// constant x, so no graph grows with the terms; its gradient is that of the Neumann-series
/// surrogate wᵀJ_g(x)v, w = Σ_{k<n} (−1)ᵏ (Jᵀ)ᵏv / P(N ≥ k + 1 − exactTerms), whose expectation is
/// tr((I + J)⁻¹ dJ) = d log det(I + J) (Chen et al. 2019, §3.2).
let rouletteLogDet (gen: Generator) (exactTerms: int) (stop: float) (g: Tensor -> Tensor) (gConst: Tensor -> Tensor) (x: Tensor) =
    let n = exactTerms + geometric gen stop
    let weight (k: int) = if k <= exactTerms then 1.0 else (1.0 - stop) ** -(float (k - exactTerms))
    let v = gen.normal(x.shape, 0.0, 1.0, x.dtype, x.device)
    let _, pullbackConst = Ad.vjp gConst (x.noDiff())
    let mutable power = v
    let mutable neumann = v * weight 1
    let mutable value = Tensor.zeros([| x.shape[0] |], x.dtype, x.device)
    for k in 1..n do
        power <- (pullbackConst power).noDiff()
        value <- value + (power * v).sum(1) * ((if k % 2 = 1 then 1.0 else -1.0) * weight k / float k)
        if k < n then neumann <- neumann + power * ((if k % 2 = 1 then -1.0 else 1.0) * weight (k + 1))
    let _, pullback = Ad.vjp g x
    let surrogate = (pullback (neumann.noDiff()) * v).sum(1)
    value.noDiff() + surrogate - surrogate.noDiff()

let private estimate (o: ResidualOptions) (gen: Generator) (g: Tensor -> Tensor) (gConst: Tensor -> Tensor) (x: Tensor) =
    match o.LogDet with
    | ResidualLogDet.Exact -> snd (exactLogDet g x)
    | ResidualLogDet.PowerSeries n -> powerSeriesLogDet gen n g x
    | ResidualLogDet.RussianRoulette(n, stop) -> rouletteLogDet gen n stop g gConst x

let private constant (p: Params) = p.Map(fun t -> t.noDiff())

let private condition (contextDim: int) (ctx: Context) (x: Tensor) = Context.forLayer "residual" contextDim x.shape[0] ctx

let private forward (o: ResidualOptions) (contextDim: int) (gen: Generator) (p: Params) (ctx: Context) (x: Tensor) =
    let c = condition contextDim ctx x
    let g = networkFor o p ctx.Training c
    x + g x, estimate o gen g (networkFor o (constant p) ctx.Training (c |> Option.map (fun c -> c.noDiff()))) x

// The fixed point x* is found on constants; one Newton step x = x* − (I + J_g(x*))⁻¹(x* + g(x*) − y),
// with the matrix held constant, restores the implicit-function derivatives: dx/dy = (I + J)⁻¹ and
// dx/dθ = −(I + J)⁻¹ ∂g/∂θ, while the value moves only by O(residual²). The cheaper "one implicit
// step" x = y − g(x*) would give dx/dy = I: wrong Jacobians for the law suite and biased
// gradients. The exact mode inverts I + J densely (it has the Jacobian anyway); the estimated modes
// apply (I + J)⁻¹ by `NeumannTerms` terms of Σ(−J)ᵏ through JVPs (error ≤ c^(terms+1)).
let private inverse (o: ResidualOptions) (contextDim: int) (gen: Generator) (p: Params) (ctx: Context) (y: Tensor) =
    let c = condition contextDim ctx y
    let g = networkFor o p ctx.Training c
    let gConst = networkFor o (constant p) ctx.Training (c |> Option.map (fun c -> c.noDiff()))
    let xStar = fixedPoint o.Tolerance o.MaxIterations gConst y
    let residual = xStar + g xStar - y
    let x =
        match o.LogDet with
        | ResidualLogDet.Exact ->
            let a, _ = exactLogDet gConst xStar
            xStar - (a.inverse() * residual.unsqueeze(1)).sum(2)
        | _ ->
            let mutable term = residual
            let mutable total = residual
            for _ in 1 .. o.NeumannTerms do
                term <- -(snd (Ad.jvp gConst xStar term))
                total <- total + term
            xStar - total
    x, -(estimate o gen g gConst x)

let private observe (o: ResidualOptions) (p: Params) (buffers: Params) (ctx: Context) (_: Tensor) =
    if not ctx.Training then p, buffers
    else
        let updates =
            [ for i in 0 .. layers o - 1 do
                  let u, v = powerIterate o.TrainIterations p[$"{i}.weight"] buffers[$"{i}.u"] buffers[$"{i}.v"]
                  yield $"{i}.u", u
                  yield $"{i}.v", v ]
        p, buffers.With updates

/// A residual block on `dim`-dimensional rows whose g also reads a context of `contextDim` features
/// (0: unconditional). `gen` draws the initial weights and power-iteration vectors, and (kept,
/// advanced by each call) the Hutchinson vectors and roulette lengths.
let createConditional (contextDim: int) (o: ResidualOptions) (gen: Generator) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    Guard.that (nameof contextDim) (contextDim >= 0) $"the context size must be at least 0, got {contextDim}"
    Guard.that "Coefficient" (o.Coefficient > 0.0 && o.Coefficient < 1.0) $"the spectral-norm coefficient must lie in (0, 1) for g to be a contraction, got {o.Coefficient}"
    Guard.that "MaxIterations" (o.MaxIterations >= 1) $"MaxIterations must be at least 1, got {o.MaxIterations}"
    Guard.that "TrainIterations" (o.TrainIterations >= 1 && o.EvalIterations >= 1) $"power iterations must be at least 1, got {o.TrainIterations} and {o.EvalIterations}"
    o.Hidden |> List.iter (Guard.positive "Hidden")
    match o.LogDet with
    | ResidualLogDet.PowerSeries n -> Guard.positive "LogDet" n
    | ResidualLogDet.RussianRoulette(n, stop) ->
        Guard.that "LogDet" (n >= 0 && stop > 0.0 && stop < 1.0) $"roulette needs exactTerms ≥ 0 and a stop probability in (0, 1), got {n} and {stop}"
    | ResidualLogDet.Exact -> ()
    let sizes = Array.ofList (dim :: o.Hidden @ [ dim ])
    let n = sizes.Length - 1
    let parameters =
        Params.concat
            [ for i in 0 .. n - 1 do
                  // nn.Linear's initialisation, uniform in ±1/√fan_in
                  let bound = 1.0 / sqrt (float sizes[i])
                  yield Params.ofList
                      [ $"{i}.weight", gen.uniform([| sizes[i + 1]; sizes[i] |], -bound, bound, dtype)
                        $"{i}.bias", gen.uniform([| sizes[i + 1] |], -bound, bound, dtype) ]
                  if i < n - 1 && o.Activation = LipschitzActivation.LipSwish then
                      // softplus(0.5413) = 1: LipSwish starts as x·σ(x)/1.1
                      yield Params.ofList [ $"{i}.beta", Tensor.full([||], 0.5413248546129181, dtype) ]
              if contextDim > 0 then
                  // the context's share of the first layer, as nn.Linear on [x; c] would start it
                  let bound = 1.0 / sqrt (float (dim + contextDim))
                  yield Params.ofList [ "context.weight", gen.uniform([| sizes[1]; contextDim |], -bound, bound, dtype) ] ]
    let buffers =
        Params.ofList
            [ for i in 0 .. n - 1 do
                  yield $"{i}.u", normalise (gen.normal([| sizes[i + 1] |], 0.0, 1.0, dtype))
                  yield $"{i}.v", normalise (gen.normal([| sizes[i] |], 0.0, 1.0, dtype)) ]
    let settings =
        Settings.ofList
            [ "dim", Setting.Int dim
              "hidden", Setting.Ints(Array.ofList o.Hidden)
              "coefficient", Setting.Float o.Coefficient
              "activation", Setting.Text(activationName o.Activation)
              "logDet", Setting.Text(logDetName o.LogDet)
              "trainIterations", Setting.Int o.TrainIterations
              "evalIterations", Setting.Int o.EvalIterations
              "tolerance", Setting.Float o.Tolerance
              "maxIterations", Setting.Int o.MaxIterations
              "neumannTerms", Setting.Int o.NeumannTerms
              "contextDim", Setting.Int contextDim ]
    let b = Bijector.create "residual" settings [| dim |] parameters (forward o contextDim gen) (inverse o contextDim gen)
    { b with Buffers = buffers; Observe = Some(observe o) }

/// An unconditional residual block on `dim`-dimensional rows (see `createConditional`).
let createWith (o: ResidualOptions) (gen: Generator) (dtype: Dtype) (dim: int) = createConditional 0 o gen dtype dim

/// A residual block with the default options.
let create (gen: Generator) (dtype: Dtype) (dim: int) = createWith defaults gen dtype dim

let private optionsOf (s: Settings) =
    { Hidden = List.ofArray (Settings.ints "hidden" s)
      Coefficient = Settings.float "coefficient" s
      Activation = parseActivation (Settings.text "activation" s)
      LogDet = parseLogDet (Settings.text "logDet" s)
      TrainIterations = Settings.int "trainIterations" s
      EvalIterations = Settings.int "evalIterations" s
      Tolerance = Settings.float "tolerance" s
      MaxIterations = Settings.int "maxIterations" s
      NeumannTerms = Settings.int "neumannTerms" s }

let private small = { defaults with Hidden = [ 8 ] }

// models saved before conditional blocks have no context
let private rebuild (dtype: Dtype) (s: Settings) =
    createConditional (if s.ContainsKey "contextDim" then Settings.int "contextDim" s else 0) (optionsOf s) (Generator 0UL) dtype (Settings.int "dim" s)

let private entryFor (name: string) =
    let make (g: Generator) (t: Dtype) (d: int) = createConditional 0 small g t d
    { Entry.exact name rebuild make with
        InverseKind = InverseKind.Iterative defaults.Tolerance }

/// The catalogue's layer: the exact-log-det block with one hidden layer of 8.
[<CatalogueEntry>]
let entry = entryFor "residual"
