/// A bijector on channel vectors applied at every pixel of [C; H; W] images: the image is read as
/// n·H·W rows of C channels, the inner map runs on the rows, and each image's log|det J| is the
/// sum over its H·W pixels. With ActNorm inside this is Glow's per-channel ActNorm (initialised
/// from the first batch over all pixels); with LuLinear it is Glow's invertible 1×1 convolution
/// y = W·x at every pixel, log|det J| = H·W·Σ log|Uᵢᵢ| (Kingma & Dhariwal 2018).
module Flows.Bijectors.Pixelwise

open Flows
open Flows.Tensors

/// Images [n; C; H; W] as pixel rows [n·H·W; C].
let toPixels (x: Tensor) = x.permute([| 0; 2; 3; 1 |]).reshape [| -1; x.shape[1] |]

/// Pixel rows [n·H·W; C] back to images [n; C; H; W].
let ofPixels (height: int) (width: int) (rows: Tensor) =
    rows.reshape([| -1; height; width; rows.shape[1] |]).permute [| 0; 3; 1; 2 |]

/// `inner` (on [rows; C]) at every pixel of `image`-shaped data ([C; H; W]), named `name`.
let create (name: string) (image: int[]) (inner: Bijector) =
    Guard.that (nameof image) (image.Length = 3 && Array.forall (fun d -> d > 0) image) $"expected an image shape [channels; height; width], got {Shape.show image}"
    Guard.that (nameof inner) (inner.Event = [| image[0] |]) $"the inner bijector must act on {image[0]} channels, got event {Shape.show inner.Event}"
    let height, width = image[1], image[2]
    let lift (map: MapWithLogDet) (p: Params) (ctx: Context) (x: Tensor) =
        Guard.event "x" image x
        let y, logDet = map p ctx (toPixels x)
        ofPixels height width y, logDet.reshape([| x.shape[0]; height * width |]).sum(1)
    { inner with
        Name = name
        Settings = inner.Settings |> Map.add "image" (Setting.Ints image)
        Event = image
        Forward = lift inner.Forward
        Inverse = lift inner.Inverse
        Observe = inner.Observe |> Option.map (fun hook -> fun p buffers ctx y -> hook p buffers ctx (toPixels y)) }

/// Glow's ActNorm: a scale and shift per channel, set from the first batch it observes so that its
/// inverse maps the batch to zero mean and unit variance per channel (identity until then).
let actNorm (dtype: Dtype) (image: int[]) = create "channel-actnorm" image (ActNorm.create dtype image[0])

/// Glow's invertible 1×1 convolution in LU form, starting as the channel reversal (Glow's
/// "reverse" permutation, which the learnt matrix then moves away from).
let invertibleConv (dtype: Dtype) (image: int[]) =
    create "invertible-1x1-conv" image (LuLinear.create (Array.init image[0] (fun i -> image[0] - 1 - i)) dtype)

let private shapes = [ [| 1; 2; 2 |]; [| 2; 2; 2 |]; [| 3; 2; 2 |]; [| 2; 3; 3 |] ]

let private rows (b: Bijector) = ImageRows.ofImages b.Event b.Event b

let private entryFor (name: string) (build: Dtype -> Settings -> Bijector) (create: Generator -> Dtype -> int[] -> Bijector) =
    Entry.exact name (fun t s -> rows (build t s)) (fun g t d -> rows (create g t (ImageRows.shapeFor shapes d)))

[<CatalogueEntry>]
let actNormEntry =
    { entryFor "channel-actnorm" (fun t s -> actNorm t (Settings.ints "image" s)) (fun _ t image -> actNorm t image) with
        IdentityAtInit = true }

[<CatalogueEntry>]
let invertibleConvEntry =
    entryFor "invertible-1x1-conv"
        (fun t s -> create "invertible-1x1-conv" (Settings.ints "image" s) (LuLinear.create (Settings.ints "perm" s) t))
        (fun g t image -> create "invertible-1x1-conv" image (LuLinear.create (g.permutation(image[0]).toArrayInt()) t))
