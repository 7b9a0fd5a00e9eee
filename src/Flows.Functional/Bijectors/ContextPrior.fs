/// Glow's class-conditional prior (Kingma & Dhariwal 2018, `ycond`): on [C; H; W] images the base
/// N(0, I) becomes N(μ(c), exp(logs(c))²) per channel, with [μ, logs] a zero-initialised linear map
/// of the context c (their `linear_zeros` of the one-hot class), so it starts as the identity:
///   forward (base → data)  x = μ(c) + exp(logs(c))·ε,   log|det J| = H·W·Σ_channels logs(c)
///   inverse (data → base)  ε = (x − μ(c))·exp(−logs(c)).
/// The raw log-scale is soft-clamped to |logs| < clamp. `perChannel` is the same context term for
/// other layers (the learned factor-out prior adds it to its convolution's output).
module Flows.Bijectors.ContextPrior

open Flows
open Flows.Tensors

/// Zero-initialised "context.weight" [outputs; contextDim] and "context.bias" [outputs].
let parameters (dtype: Dtype) (contextDim: int) (outputs: int) =
    Params.ofList [ "context.weight", Tensor.zeros([| outputs; contextDim |], dtype); "context.bias", Tensor.zeros([| outputs |], dtype) ]

/// The linear map of contexts c [n; C] to per-channel terms [n; outputs; 1; 1], which broadcast over
/// an image's pixels.
let perChannel (p: Params) (c: Tensor) =
    Tensor.linear(c, p["context.weight"], p["context.bias"]).unsqueeze(2).unsqueeze(3)

/// The class-conditional prior on `image`-shaped data for contexts of width `contextDim`.
let create (dtype: Dtype) (clamp: float) (contextDim: int) (image: int[]) =
    Guard.that (nameof image) (image.Length = 3 && Array.forall (fun d -> d > 0) image) $"expected an image shape [channels; height; width], got {Shape.show image}"
    Guard.positive (nameof contextDim) contextDim
    Guard.positiveFloat (nameof clamp) clamp
    let channels = image[0]
    let map (inverse: bool) (p: Params) (ctx: Context) (x: Tensor) =
        Guard.event "x" image x
        let h = perChannel p (Context.require "context-prior" contextDim x.shape[0] ctx)
        let mean = h.narrow(1, 0, channels).expand(x.shape)
        let logScale = (Coupling.logScale (Coupling.ScaleMap.SoftClamp clamp) (h.narrow(1, channels, channels))).expand(x.shape)
        let logDet = Bijector.sumRows logScale
        Tensor.affineMap(x, mean, logScale, inverse), (if inverse then -logDet else logDet)
    let settings = Settings.ofList [ "image", Setting.Ints image; "prior-clamp", Setting.Float clamp; "contextDim", Setting.Int contextDim ]
    Bijector.create "context-prior" settings image (parameters dtype contextDim (2 * channels)) (map false) (map true)

let private shapes = [ [| 1; 2; 2 |]; [| 2; 1; 3 |]; [| 3; 2; 1 |] ]

let private rows (b: Bijector) = ImageRows.ofImages b.Event b.Event b

let private build (dtype: Dtype) (s: Settings) =
    rows (create dtype (Settings.float "prior-clamp" s) (Settings.int "contextDim" s) (Settings.ints "image" s))

/// The catalogue entry: Glow's clamp of 5 and a 3-wide context.
[<CatalogueEntry>]
let entry =
    let make (dtype: Dtype) (dim: int) = rows (create dtype 5.0 3 (ImageRows.shapeFor shapes dim))
    { Entry.exact "context-prior" build (fun _ t d -> make t d) with
        ContextDim = Some 3
        IdentityAtInit = true }
