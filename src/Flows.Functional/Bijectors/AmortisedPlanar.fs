/// Amortised planar flow (Rezende & Mohamed 2015 §4, the flow posterior of a VAE): a conditional
/// bijector whose u, w, b for each row are a linear map of that row's context features h (a
/// hypernetwork, Nn.Amortised): y = x + û(h)·tanh(w(h)ᵀx + b(h)), forward base → data. The planar û
/// constraint is applied per row, so every row's map is invertible; log|det J| per row is
/// log|1 + tanh'(w(h)ᵀx + b(h))·û(h)ᵀw(h)|. The maps are Planar's (forwardWith, inverseWith).
module Flows.Bijectors.AmortisedPlanar

open Flows
open Flows.Nn
open Flows.Tensors

/// A planar layer on `dim` whose parameters come from contexts of `contextDim` features.
let create (gen: Generator) (dtype: Dtype) (dim: int) (contextDim: int) =
    Guard.positive (nameof dim) dim
    let shapes = [ [| dim |]; [| dim |]; [||] ]
    let rows = Amortised.rows "amortised-planar" contextDim shapes
    let map (apply: Tensor -> Tensor -> Tensor -> Tensor -> Tensor * Tensor) (p: Params) (ctx: Context) (x: Tensor) =
        let parts = rows p ctx x
        apply (Planar.constrain parts[0] parts[1]) parts[1] parts[2] x
    Bijector.create "amortised-planar" (Settings.ofList [ "dim", Setting.Int dim; "contextDim", Setting.Int contextDim ]) [| dim |]
        (Amortised.create gen dtype contextDim (Amortised.outputs shapes)) (map Planar.forwardWith) (map Planar.inverseWith)

[<CatalogueEntry>]
let entry =
    { Entry.exact "amortised-planar" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s) (Settings.int "contextDim" s))
        (fun g t d -> create g t d 3) with
        ContextDim = Some 3
        InverseKind = InverseKind.Iterative Planar.tolerance }
