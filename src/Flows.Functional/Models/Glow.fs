/// Glow (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions") for
/// images [C; H; W]. Each level, from the data side: squeeze to [4C; H/2; W/2], K steps of
/// (channel ActNorm → invertible 1×1 convolution → affine channel coupling), then factor half of
/// the channels out to the base and run the next level on the other half (the last level keeps
/// all); the level ends by unsqueezing, so every level maps [C; H; W] to itself and the base is a
/// standard normal over all C·H·W dimensions. The factored-out halves get Glow's learned prior
/// N(μ, exp(logs)²) conditioned on the kept half (`FactorOut.Prior`), or RealNVP's fixed N(0, I).
/// Class-conditional Glow (ContextDim > 0) reads a context c: the couplings take it as a per-channel
/// bias of their conditioners, a learned factor-out prior adds a linear map of c to its [μ, logs],
/// and the deepest level ends in Glow's class-conditional top prior N(μ(c), exp(logs(c))²)
/// (`ContextPrior`).
module Flows.Models.Glow

open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Tensors

/// Glow's hyperparameters; `Config.defaults` gives Glow's scale map.
type Config =
    { Channels: int
      Height: int
      Width: int
      /// Levels of squeeze + steps; height and width must be divisible by 2^Levels.
      Levels: int
      /// Flow steps (ActNorm, 1×1 conv, coupling) per level.
      StepsPerLevel: int
      /// Channels of the couplings' conditioner networks.
      Hidden: int
      ScaleMap: Coupling.ScaleMap
      /// The prior of each factored-out half.
      Prior: FactorOut.Prior
      /// Width of the context (a one-hot class, say; 0: unconditional).
      ContextDim: int }

/// Default Glow configurations.
[<RequireQualifiedAccess>]
module Config =
    /// A small Glow for [channels; height; width] images: 2 levels of 4 steps, 32 hidden
    /// channels, Glow's σ(raw + 2) scale and learned prior.
    let defaults (channels: int) (height: int) (width: int) =
        { Channels = channels; Height = height; Width = width; Levels = 2; StepsPerLevel = 4; Hidden = 32
          ScaleMap = Coupling.ScaleMap.Sigmoid; Prior = FactorOut.Prior.glow; ContextDim = 0 }

    /// `config` with RealNVP's pieces (Dinh et al. 2017) in Glow's multi-scale architecture: a fixed
    /// N(0, I) prior on the factored-out halves and Coupling.realNvp's soft-clamped log-scales.
    let realNvp (config: Config) =
        { config with ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; Prior = FactorOut.Prior.Standard }

/// One step in data → base order: ActNorm, 1×1 convolution, coupling.
let private step (gen: Generator) (dtype: Dtype) (config: Config) (image: int[]) =
    [ Pixelwise.actNorm dtype image
      Pixelwise.invertibleConv dtype image
      ChannelCoupling.create gen dtype { Image = image; Hidden = config.Hidden; ScaleMap = config.ScaleMap; ContextDim = config.ContextDim } ]

// The log-scale bound of the class-conditional top prior: the learned prior's, else Glow's ±5.
let private topClamp (config: Config) =
    match config.Prior with
    | FactorOut.Prior.Learned clamp -> clamp
    | FactorOut.Prior.Standard -> 5.0

/// The layers of the level on `image` with `levels` levels from here on, in forward order.
let rec private level (gen: Generator) (dtype: Dtype) (config: Config) (image: int[]) (levels: int) : Bijector list =
    let squeezed = Squeeze.squeezedShape image
    let steps = List.init config.StepsPerLevel (fun _ -> step gen dtype config squeezed) |> List.concat
    let deeper =
        if levels > 1 then
            let kept = FactorOut.keptShape squeezed
            [ FactorOut.withConditionalPrior dtype config.Prior config.ContextDim squeezed (Compose.chain "glow-level" (level gen dtype config kept (levels - 1))) ]
        elif config.ContextDim > 0 then [ ContextPrior.create dtype (topClamp config) config.ContextDim squeezed ]
        else []
    let squeeze = Squeeze.create image
    List.rev ([ squeeze ] @ steps @ deeper @ [ Bijector.invert squeeze ])

/// Checks a configuration: positive sizes, and height and width divisible by 2^Levels.
let private validate (config: Config) =
    Guard.positive (nameof config.Channels) config.Channels
    Guard.positive (nameof config.Levels) config.Levels
    Guard.positive (nameof config.StepsPerLevel) config.StepsPerLevel
    Guard.positive (nameof config.Hidden) config.Hidden
    Guard.that (nameof config.ContextDim) (config.ContextDim >= 0) $"the context size must be at least 0, got {config.ContextDim}"
    match config.Prior with
    | FactorOut.Prior.Learned clamp -> Guard.positiveFloat (nameof config.Prior) clamp
    | FactorOut.Prior.Standard -> ()
    let side = 1 <<< config.Levels
    Guard.that (nameof config.Levels) (config.Height > 0 && config.Width > 0 && config.Height % side = 0 && config.Width % side = 0)
        $"{config.Levels} levels need height and width divisible by {side}, got {config.Height} x {config.Width}"

/// Glow's bijectors in forward (base → data) order, on rows [batch; C; H; W].
let layers (gen: Generator) (dtype: Dtype) (config: Config) =
    validate config
    level gen dtype config [| config.Channels; config.Height; config.Width |] config.Levels

/// A Glow flow: a standard normal base over [C; H; W] pushed through `layers`.
let create (gen: Generator) (dtype: Dtype) (config: Config) =
    Flow.create (Distribution.standardNormal [| config.Channels; config.Height; config.Width |] dtype) (layers gen dtype config)

/// Settings that rebuild a configuration.
let settings (config: Config) =
    Settings.ofList(
        [ "image", Setting.Ints [| config.Channels; config.Height; config.Width |]
          "levels", Setting.Int config.Levels
          "steps", Setting.Int config.StepsPerLevel
          "hidden", Setting.Int config.Hidden
          "scale", Setting.Text(Coupling.scaleName config.ScaleMap)
          "contextDim", Setting.Int config.ContextDim ]
        @ FactorOut.Prior.settings config.Prior)

/// The configuration saved settings describe (models saved before the prior option have the
/// standard one, before class-conditional Glow no context).
let configOfSettings (s: Settings) =
    let image = Settings.ints "image" s
    { Channels = image[0]; Height = image[1]; Width = image[2]; Levels = Settings.int "levels" s
      StepsPerLevel = Settings.int "steps" s; Hidden = Settings.int "hidden" s; ScaleMap = Coupling.parseScale (Settings.text "scale" s)
      Prior = FactorOut.Prior.ofSettings s
      ContextDim = (if s.ContainsKey "contextDim" then Settings.int "contextDim" s else 0) }

/// The whole Glow as one bijector named "glow" on flat rows [batch; C·H·W] (for the law suite and
/// the C# façade); its settings rebuild it.
let asRows (gen: Generator) (dtype: Dtype) (config: Config) =
    let chain = { Compose.chain "glow" (layers gen dtype config) with Settings = settings config }
    ImageRows.ofImages chain.Event chain.Event chain

let private entryFor (name: string) =
    let configFor (dim: int) =
        { Config.defaults (dim / 16) 4 4 with StepsPerLevel = 1; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; ContextDim = 0 }
    Entry.exact name (fun t s -> asRows (Generator 0UL) t (configOfSettings s)) (fun g t d -> asRows g t (configFor d))

[<CatalogueEntry>]
let entry = entryFor "glow"
