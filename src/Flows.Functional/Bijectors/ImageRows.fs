/// Image bijectors on flat rows: reshapes rows [batch; C·H·W] into images [batch; C; H; W] on the
/// way in and back on the way out, so the law suite (which draws flat rows) checks image
/// bijectors too. A bijector that changes shape names both sides: `baseSide` is the input shape of
/// its forward, `dataSide` the input shape of its inverse.
module Flows.Bijectors.ImageRows

open Flows
open Flows.Tensors

/// `image` bijector on rows of Shape.numel dataSide features (the same count on the base side).
let ofImages (baseSide: int[]) (dataSide: int[]) (image: Bijector) =
    let dim = Shape.numel dataSide
    Guard.that (nameof baseSide) (Shape.numel baseSide = dim) $"both sides need {dim} features, got {Shape.show baseSide}"
    let through (shape: int[]) (map: MapWithLogDet) (p: Params) (ctx: Context) (x: Tensor) =
        Guard.rows "x" dim x
        let y, logDet = map p ctx (x.reshape(Array.append [| x.shape[0] |] shape))
        y.reshape [| x.shape[0]; dim |], logDet
    { image with
        Event = [| dim |]
        Forward = through baseSide image.Forward
        Inverse = through dataSide image.Inverse
        Observe =
          image.Observe
          |> Option.map (fun hook -> fun p buffers ctx (y: Tensor) -> hook p buffers ctx (y.reshape(Array.append [| y.shape[0] |] dataSide))) }

/// The image shape among `shapes` with `dim` features (catalogue entries draw a dimension first).
let shapeFor (shapes: int[] list) (dim: int) =
    match shapes |> List.tryFind (fun s -> Shape.numel s = dim) with
    | Some s -> s
    | None -> invalidArg (nameof dim) $"no image shape with {dim} features among {shapes |> List.map Shape.show}"
