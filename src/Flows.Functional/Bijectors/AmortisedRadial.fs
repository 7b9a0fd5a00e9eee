/// Amortised radial flow (Rezende & Mohamed 2015 §4): a conditional bijector whose centre x₀, α̂ and
/// β̂ for each row are a linear map of that row's context features h (Nn.Amortised):
/// y = x + β(h)·(x − x₀(h))/(α(h) + r), forward base → data, with Radial's constraints α > 0,
/// β ≥ −α per row, so every row's map is invertible. The maps and log-dets are Radial's.
module Flows.Bijectors.AmortisedRadial

open Flows
open Flows.Nn
open Flows.Tensors

/// A radial layer on `dim` whose parameters come from contexts of `contextDim` features.
let create (gen: Generator) (dtype: Dtype) (dim: int) (contextDim: int) =
    Guard.positive (nameof dim) dim
    let shapes = [ [| dim |]; [||]; [||] ]
    let rows = Amortised.rows "amortised-radial" contextDim shapes
    let map (apply: Tensor -> Tensor -> Tensor -> Tensor -> Tensor * Tensor) (p: Params) (ctx: Context) (x: Tensor) =
        let parts = rows p ctx x
        let alpha, beta = Radial.constants parts[1] parts[2]
        apply alpha beta parts[0] x
    Bijector.create "amortised-radial" (Settings.ofList [ "dim", Setting.Int dim; "contextDim", Setting.Int contextDim ]) [| dim |]
        (Amortised.create gen dtype contextDim (Amortised.outputs shapes)) (map Radial.forwardWith) (map Radial.inverseWith)

[<CatalogueEntry>]
let entry =
    { Entry.exact "amortised-radial" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s) (Settings.int "contextDim" s))
        (fun g t d -> create g t d 3) with
        ContextDim = Some 3 }
