/// Squeeze (RealNVP's space-to-depth; Glow): each 2×2 block of pixels becomes four channels,
/// [C; H; W] ↔ [4C; H/2; W/2], channel c·4 + 2·dy + dx of the squeezed image holding pixel
/// (2y + dy, 2x + dx) of channel c. A permutation of the features, so log|det J| = 0. The
/// inverse (data → base) squeezes, the forward (base → data) unsqueezes; Event is the data side.
module Flows.Bijectors.Squeeze

open Flows
open Flows.Tensors

/// [n; C; H; W] → [n; 4C; H/2; W/2].
let squeeze (x: Tensor) =
    let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    x.reshape([| n; c; h / 2; 2; w / 2; 2 |]).permute([| 0; 1; 3; 5; 2; 4 |]).reshape [| n; 4 * c; h / 2; w / 2 |]

/// [n; 4C; H/2; W/2] → [n; C; H; W], undoing `squeeze`.
let unsqueeze (x: Tensor) =
    let n, c, h, w = x.shape[0], x.shape[1] / 4, x.shape[2], x.shape[3]
    x.reshape([| n; c; 2; 2; h; w |]).permute([| 0; 1; 4; 2; 5; 3 |]).reshape [| n; c; 2 * h; 2 * w |]

/// The shape [4C; H/2; W/2] of a squeezed [C; H; W] image, or an error when H or W is odd.
let squeezedShape (image: int[]) =
    Guard.that (nameof image) (image.Length = 3 && image[0] > 0 && image[1] > 0 && image[2] > 0 && image[1] % 2 = 0 && image[2] % 2 = 0)
        $"a squeeze needs a [channels; height; width] image with even height and width, got {Shape.show image}"
    [| 4 * image[0]; image[1] / 2; image[2] / 2 |]

/// The squeeze of `image`-shaped data ([C; H; W]); its inverse squeezes, its forward unsqueezes.
let create (image: int[]) =
    let squeezed = squeezedShape image
    let forward (_: Params) (_: Context) (x: Tensor) =
        Guard.event "x" squeezed x
        unsqueeze x, Bijector.zeroLogDet x
    let inverse (_: Params) (_: Context) (y: Tensor) =
        Guard.event "y" image y
        squeeze y, Bijector.zeroLogDet y
    Bijector.create "squeeze" (Settings.ofList [ "image", Setting.Ints image ]) image Params.empty forward inverse

let private rows (image: int[]) = ImageRows.ofImages (squeezedShape image) image (create image)

[<CatalogueEntry>]
let entry =
    let shapes = [ [| 1; 2; 2 |]; [| 2; 2; 2 |]; [| 1; 4; 4 |]; [| 3; 2; 4 |] ]
    let make (dim: int) = rows (ImageRows.shapeFor shapes dim)
    Entry.exact "squeeze" (fun _ s -> rows (Settings.ints "image" s)) (fun _ _ d -> make d)
