/// Multi-scale factoring out (RealNVP, Glow): of a [C; H; W] image the first ⌈C/2⌉ channels go
/// on through `inner`, the other ⌊C/2⌋ leave for the base distribution unchanged. With a standard
/// normal base over all dimensions this is RealNVP's split with a fixed N(0, I) prior on the
/// factored-out half (Glow learns a conditional prior there instead). Both directions are block
/// diagonal, so log|det J| is the inner map's.
module Flows.Bijectors.FactorOut

open Flows
open Flows.Tensors

/// The shape [⌈C/2⌉; H; W] that `inner` must act on for `image`-shaped data.
let keptShape (image: int[]) =
    Guard.that (nameof image) (image.Length = 3 && image[0] >= 2 && image[1] > 0 && image[2] > 0)
        $"factoring out needs an image shape [channels >= 2; height; width], got {Shape.show image}"
    [| image[0] - image[0] / 2; image[1]; image[2] |]

/// Applies `inner` to the first ⌈C/2⌉ channels of `image`-shaped data and passes the rest.
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

let private shapes = [ [| 4; 1; 2 |]; [| 3; 1; 3 |]; [| 4; 2; 2 |] ]

/// The law suite's instance: channel ActNorm then a channel coupling on the kept half.
let private example (gen: Generator) (dtype: Dtype) (image: int[]) =
    let kept = keptShape image
    let inner =
        Compose.chain "kept"
            [ ChannelCoupling.create gen dtype { Image = kept; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0 }
              Pixelwise.actNorm dtype kept ]
    let b = create image inner
    ImageRows.ofImages image image b

[<CatalogueEntry>]
let entry =
    { Entry.exact "factor-out" (fun t s -> example (Generator 0UL) t (Settings.ints "image" s))
        (fun g t d -> example g t (ImageRows.shapeFor shapes d))
        (fun g t d -> example g t (ImageRows.shapeFor shapes d) |> Entry.perturb g 0.3) with
        Dims = shapes |> List.map Shape.numel
        IdentityAtInit = true }
