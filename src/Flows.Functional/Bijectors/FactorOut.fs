/// Multi-scale factoring out (RealNVP, Glow): of a [C; H; W] image the first ⌈C/2⌉ channels x1 go
/// on through `inner`, the other ⌊C/2⌋ channels x2 leave for the base distribution. With a standard
/// normal base over all dimensions the prior on x2 is a map on x2 alone:
///   RealNVP (standard prior): x2 passes unchanged, a fixed N(0, I) prior; log|det J| is the inner's;
///   Glow (learned prior, `split2d` of Kingma & Dhariwal 2018) x2 ~ N(μ(x1), exp(logs(x1))²), with
///     [μ, logs] a zero-initialised 3×3 convolution of x1 at the split (before the inner levels):
///     forward (base → data)  x2 = μ(x1) + exp(logs(x1))·ε  after x1 = inner(z1),
///     inverse (data → base)  ε = (x2 − μ(x1))·exp(−logs(x1)),  log|det J| = inner's + Σ logs.
///   Class-conditional Glow adds a zero-initialised linear map of the context to [μ, logs] per
///   channel (`ContextPrior.perChannel`), so the factored-out half's prior depends on c as well.
module Flows.Bijectors.FactorOut

open Flows
open Flows.Nn
open Flows.Tensors

/// The distribution the factored-out half x2 gets from the base.
[<RequireQualifiedAccess>]
type Prior =
    /// RealNVP: x2 goes to the standard-normal base unchanged (a fixed N(0, I) prior).
    | Standard
    /// Glow: x2 ~ N(μ(x1), exp(logs(x1))²) from a zero-initialised 3×3 convolution of the kept half,
    /// its raw log-scale soft-clamped to |logs| < clamp (so exp cannot overflow).
    | Learned of clamp: float

/// Saved priors.
[<RequireQualifiedAccess>]
module Prior =
    /// Glow's learned prior with log-scales bounded by ±5 (standard deviations e^±5 around the mean).
    let glow = Prior.Learned 5.0

    /// Settings that rebuild `prior`.
    let settings (prior: Prior) =
        match prior with
        | Prior.Standard -> [ "prior", Setting.Text "standard" ]
        | Prior.Learned clamp -> [ "prior", Setting.Text "learned"; "prior-clamp", Setting.Float clamp ]

    /// The prior saved settings describe; settings saved before priors existed mean the standard one.
    let ofSettings (settings: Settings) =
        if not (settings.ContainsKey "prior") then Prior.Standard
        else
            match Settings.text "prior" settings with
            | "standard" -> Prior.Standard
            | "learned" -> Prior.Learned(Settings.float "prior-clamp" settings)
            | other -> invalidArg (nameof settings) $"unknown factor-out prior '{other}', expected 'standard' or 'learned'"

/// The shape [⌈C/2⌉; H; W] that `inner` must act on for `image`-shaped data.
let keptShape (image: int[]) =
    Guard.that (nameof image) (image.Length = 3 && image[0] >= 2 && image[1] > 0 && image[2] > 0)
        $"factoring out needs an image shape [channels >= 2; height; width], got {Shape.show image}"
    [| image[0] - image[0] / 2; image[1]; image[2] |]

/// Applies `inner` to the first ⌈C/2⌉ channels of `image`-shaped data and passes the rest with
/// RealNVP's fixed N(0, I) prior.
let create (image: int[]) (inner: Bijector) =
    let kept = keptShape image
    Guard.that (nameof inner) (inner.Event = kept) $"the inner bijector must act on {Shape.show kept}, got event {Shape.show inner.Event}"
    let map (apply: MapWithLogDet) (p: Params) (ctx: Context) (x: Tensor) =
        Guard.event "x" image x
        let y, logDet = apply p ctx (x.narrow(1, 0, kept[0]))
        Tensor.cat([| y; x.narrow(1, kept[0], image[0] - kept[0]) |], 1), logDet
    { inner with
        Name = "factor-out"
        Settings = Settings.ofList [ "image", Setting.Ints image; "inner", Setting.Text inner.Name ]
        Event = image
        Forward = map inner.Forward
        Inverse = map inner.Inverse
        Observe = inner.Observe |> Option.map (fun hook -> fun p buffers ctx (y: Tensor) -> hook p buffers ctx (y.narrow(1, 0, kept[0]))) }

/// Glow's learned prior around `inner` (see the file comment), reading contexts of width
/// `contextDim` when it is positive; it starts as `create image inner`.
/// Parameters: the inner's under "inner.", the prior's convolution (and context map) under "prior.".
let private learned (dtype: Dtype) (clamp: float) (contextDim: int) (image: int[]) (inner: Bijector) =
    Guard.positiveFloat (nameof clamp) clamp
    Guard.that (nameof contextDim) (contextDim >= 0) $"the context size must be at least 0, got {contextDim}"
    let kept = keptShape image
    Guard.that (nameof inner) (inner.Event = kept) $"the inner bijector must act on {Shape.show kept}, got event {Shape.show inner.Event}"
    let factored = image[0] - kept[0]
    // zero-initialised: the generator draws nothing
    let conv = Conv.create (Generator 0UL) dtype kept[0] (2 * factored) 3 true
    let conv = if contextDim = 0 then conv else Params.concat [ conv; ContextPrior.parameters dtype contextDim (2 * factored) ]
    let meanAndLogScale (p: Params) (ctx: Context) (x1: Tensor) =
        let prior = p.Scope "prior"
        let h =
            match Context.forLayer "factor-out-learned-prior" contextDim x1.shape[0] ctx with
            | Some c -> Conv.apply None prior x1 + ContextPrior.perChannel prior c
            | None -> Conv.apply None prior x1
        h.narrow(1, 0, factored), Coupling.logScale (Coupling.ScaleMap.SoftClamp clamp) (h.narrow(1, factored, factored))
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        Guard.event "x" image z
        let x1, logDet = inner.Forward (p.Scope "inner") ctx (z.narrow(1, 0, kept[0]))
        let mean, logScale = meanAndLogScale p ctx x1
        Tensor.cat([| x1; Tensor.affineMap(z.narrow(1, kept[0], factored), mean, logScale, false) |], 1), logDet + Bijector.sumRows logScale
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        Guard.event "x" image x
        let x1 = x.narrow(1, 0, kept[0])
        // the prior conditions on x1 as the data side has it, before the inner levels map it
        let mean, logScale = meanAndLogScale p ctx x1
        let z1, logDet = inner.Inverse (p.Scope "inner") ctx x1
        Tensor.cat([| z1; Tensor.affineMap(x.narrow(1, kept[0], factored), mean, logScale, true) |], 1), logDet - Bijector.sumRows logScale
    let observe (hook: Params -> Params -> Context -> Tensor -> Params * Params) (p: Params) (buffers: Params) (ctx: Context) (y: Tensor) =
        let innerParams, innerBuffers = hook (p.Scope "inner") (buffers.Scope "inner") ctx (y.narrow(1, 0, kept[0]))
        Params.concat [ innerParams.Prefixed "inner"; (p.Scope "prior").Prefixed "prior" ], innerBuffers.Prefixed "inner"
    { Name = "factor-out-learned-prior"
      Settings =
        Settings.ofList ([ "image", Setting.Ints image; "inner", Setting.Text inner.Name; "contextDim", Setting.Int contextDim ] @ Prior.settings (Prior.Learned clamp))
      Event = image
      Params = Params.concat [ inner.Params.Prefixed "inner"; conv.Prefixed "prior" ]
      Buffers = inner.Buffers.Prefixed "inner"
      Forward = forward
      Inverse = inverse
      Observe = inner.Observe |> Option.map observe }

/// Factors out half of the channels of `image`-shaped data with `prior`, running `inner` on the
/// rest; a learned prior reads contexts of width `contextDim` (0: none), the standard one none;
/// `dtype` is that of the learned prior's parameters.
let withConditionalPrior (dtype: Dtype) (prior: Prior) (contextDim: int) (image: int[]) (inner: Bijector) =
    match prior with
    | Prior.Standard -> create image inner
    | Prior.Learned clamp -> learned dtype clamp contextDim image inner

/// `withConditionalPrior` without a context.
let withPrior (dtype: Dtype) (prior: Prior) (image: int[]) (inner: Bijector) = withConditionalPrior dtype prior 0 image inner

let private shapes = [ [| 4; 1; 2 |]; [| 3; 1; 3 |]; [| 4; 2; 2 |] ]

/// The law suite's instance: channel ActNorm then a channel coupling on the kept half.
let private example (gen: Generator) (dtype: Dtype) (prior: Prior) (image: int[]) =
    let kept = keptShape image
    let inner =
        Compose.chain "kept"
            [ ChannelCoupling.create gen dtype { Image = kept; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; ContextDim = 0 }
              Pixelwise.actNorm dtype kept ]
    let b = withPrior dtype prior image inner
    ImageRows.ofImages image image b

let private entryFor (name: string) (prior: Prior) =
    { Entry.exact name (fun t s -> example (Generator 0UL) t (Prior.ofSettings s) (Settings.ints "image" s))
        (fun g t d -> example g t prior (ImageRows.shapeFor shapes d)) with
        IdentityAtInit = true }

[<CatalogueEntry>]
let entry = entryFor "factor-out" Prior.Standard

[<CatalogueEntry>]
let learnedPriorEntry = entryFor "factor-out-learned-prior" Prior.glow
