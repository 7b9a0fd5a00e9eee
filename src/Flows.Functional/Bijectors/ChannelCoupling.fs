/// Glow's affine coupling over channels (Kingma & Dhariwal 2018; RealNVP's channel-wise mask).
/// Of a [C; H; W] image the first ⌊C/2⌋ channels x_A pass unchanged and condition the rest:
///   forward (base → data)  y_B = x_B · exp(s) + t,   (t, s) = NN(x_A),   log|det J| = Σ s
/// where NN is 3×3 conv → ReLU → 1×1 conv → ReLU → 3×3 conv (zero-initialised) and the raw scale
/// is bounded by the scale map (Glow's σ(raw + 2) applied data → base, or a soft clamp that starts
/// as the identity). A conditional coupling reads the context as a per-channel bias of the first
/// hidden layer, NN(x_A, c) = … ReLU(conv(x_A) + W_c c): the map stays affine in x_B for every c.
module Flows.Bijectors.ChannelCoupling

open Flows
open Flows.Nn
open Flows.Tensors

/// A channel coupling's hyperparameters.
type Spec =
    { /// The image shape [C; H; W], C ≥ 2.
      Image: int[]
      /// Channels of the conditioner's hidden layers.
      Hidden: int
      ScaleMap: Coupling.ScaleMap
      /// Width of the context (0: unconditional).
      ContextDim: int }

/// A channel coupling; the conditioner's last convolution starts at zero.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let image = spec.Image
    Guard.that (nameof spec.Image) (image.Length = 3 && image[0] >= 2 && image[1] > 0 && image[2] > 0)
        $"a channel coupling needs an image shape [channels >= 2; height; width], got {Shape.show image}"
    Guard.positive (nameof spec.Hidden) spec.Hidden
    Guard.that (nameof spec.ContextDim) (spec.ContextDim >= 0) $"the context size must be at least 0, got {spec.ContextDim}"
    let passed = image[0] / 2
    let changed = image[0] - passed
    let net =
        Params.concat
            [ (Conv.create gen dtype passed spec.Hidden 3 false).Prefixed "in"
              (Conv.create gen dtype spec.Hidden spec.Hidden 1 false).Prefixed "mid"
              (Conv.create gen dtype spec.Hidden (2 * changed) 3 true).Prefixed "out"
              if spec.ContextDim > 0 then
                  let bound = 1.0 / sqrt (float spec.ContextDim)
                  Params.ofList [ "context.weight", gen.uniform([| spec.Hidden; spec.ContextDim |], -bound, bound, dtype) ] ]
    let shiftAndLogScale (p: Params) (c: Tensor option) (xa: Tensor) =
        let first =
            match c with
            | Some c -> (Conv.apply None (p.Scope "in") xa + c.matmul(p["context.weight"].transpose()).unsqueeze(2).unsqueeze(3)).relu()
            | None -> Conv.apply (Some Activation.Relu) (p.Scope "in") xa
        let h =
            first
            |> Conv.apply (Some Activation.Relu) (p.Scope "mid")
            |> Conv.apply None (p.Scope "out")
        h.narrow(1, 0, changed), Coupling.logScale spec.ScaleMap (h.narrow(1, changed, changed))
    let map (inverse: bool) (p: Params) (ctx: Context) (x: Tensor) =
        Guard.event "x" image x
        let c = Context.forLayer "channel-coupling" spec.ContextDim x.shape[0] ctx
        let xa, xb = x.narrow(1, 0, passed), x.narrow(1, passed, changed)
        let shift, s = shiftAndLogScale (p.Scope "net") c xa
        let logDet = Bijector.sumRows s
        Tensor.cat([| xa; Tensor.affineMap(xb, shift, s, inverse) |], 1), (if inverse then -logDet else logDet)
    let settings =
        Settings.ofList
            [ "image", Setting.Ints image; "hidden", Setting.Int spec.Hidden; "scale", Setting.Text(Coupling.scaleName spec.ScaleMap)
              "contextDim", Setting.Int spec.ContextDim ]
    Bijector.create "channel-coupling" settings image (net.Prefixed "net") (map false) (map true)

/// The spec saved settings describe (models saved before conditional couplings have no context).
let specOfSettings (s: Settings) =
    { Image = Settings.ints "image" s; Hidden = Settings.int "hidden" s; ScaleMap = Coupling.parseScale (Settings.text "scale" s)
      ContextDim = (if s.ContainsKey "contextDim" then Settings.int "contextDim" s else 0) }

let private shapes = [ [| 2; 2; 2 |]; [| 3; 2; 2 |]; [| 2; 3; 3 |]; [| 4; 2; 2 |] ]

let private rows (b: Bijector) = ImageRows.ofImages b.Event b.Event b

let private entryFor (name: string) =
    let spec (dim: int) = { Image = ImageRows.shapeFor shapes dim; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; ContextDim = 0 }
    { Entry.exact name (fun t s -> rows (create (Generator 0UL) t (specOfSettings s))) (fun g t d -> rows (create g t (spec d))) with
        IdentityAtInit = true }

[<CatalogueEntry>]
let entry = entryFor "channel-coupling"
