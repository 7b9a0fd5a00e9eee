/// A context embedding net (nflows' `embedding_net`): a conditional bijector that takes raw contexts
/// c of width `contextDim` and hands its wrapped bijector the learnt features MLP(c) instead. The
/// maps and log-dets are the wrapped bijector's, run with the embedded context: the embedding acts on
/// the condition, not on x, so it adds nothing to log|det J|.
module Flows.Bijectors.ContextEmbedding

open Flows
open Flows.Nn
open Flows.Tensors

let private prefix = "inner."

/// Wraps `inner` (a conditional bijector built for contexts of width w > 0, its "contextDim" setting)
/// so that it takes contexts of width `contextDim` through an MLP contextDim → hidden… → w with tanh
/// between layers, initialised as PyTorch's nn.Linear. A data-initialised `inner` (ActNorm, batch
/// norm) observes its data with the embedded context.
let wrap (gen: Generator) (dtype: Dtype) (contextDim: int) (hidden: int list) (inner: Bijector) =
    Guard.positive (nameof contextDim) contextDim
    let width =
        match Map.tryFind "contextDim" inner.Settings with
        | Some(Setting.Int w) when w > 0 -> w
        | _ -> invalidArg (nameof inner) $"context-embedding: '{inner.Name}' takes no context (its contextDim setting must be positive)"
    let embed (p: Params) (ctx: Context) =
        match ctx.Condition with
        | Some c when c.dim = 2 && c.shape[1] = contextDim -> { ctx with Condition = Some(Mlp.apply Activation.Tanh (p.Scope "embedding") c) }
        | Some c -> invalidArg "context" $"context-embedding: expected contexts [batch; {contextDim}], got {Shape.show c.shape}"
        | None -> invalidArg "context" $"context-embedding: this bijector needs a context of {contextDim} features"
    let observe (hook: Params -> Params -> Context -> Tensor -> Params * Params) (p: Params) (buffers: Params) (ctx: Context) (y: Tensor) =
        let innerParams, innerBuffers = hook (p.Scope "inner") (buffers.Scope "inner") (embed p ctx) y
        Params.concat [ (p.Scope "embedding").Prefixed "embedding"; innerParams.Prefixed "inner" ], innerBuffers.Prefixed "inner"
    let settings =
        Settings.ofList (
            [ "contextDim", Setting.Int contextDim; "hidden", Setting.Ints(Array.ofList hidden); "inner", Setting.Text inner.Name ]
            @ Map.toList (Settings.nest prefix inner.Settings))
    { Name = "context-embedding"
      Settings = settings
      Event = inner.Event
      Params = Params.concat [ (Mlp.create gen dtype ([ contextDim ] @ hidden @ [ width ]) false).Prefixed "embedding"; inner.Params.Prefixed "inner" ]
      Buffers = inner.Buffers.Prefixed "inner"
      Forward = fun p ctx x -> inner.Forward (p.Scope "inner") (embed p ctx) x
      Inverse = fun p ctx y -> inner.Inverse (p.Scope "inner") (embed p ctx) y
      Observe = inner.Observe |> Option.map observe }

/// Rebuilds from saved settings: the wrapped bijector by its own catalogue entry, then the wrapper.
let build (dtype: Dtype) (settings: Settings) =
    let inner = Catalogue.rebuild dtype (Settings.text "inner" settings) (Settings.within prefix settings)
    wrap (Generator 0UL) dtype (Settings.int "contextDim" settings) (List.ofArray (Settings.ints "hidden" settings)) inner

/// nflows' `Flow(transform, distribution, embedding_net)`: one embedding net, an MLP contextDim →
/// hidden… → w, shared by every layer of `layers` (a chain, rebuilt by its catalogue entry); the
/// context is embedded once per pass and each conditional layer, all built for contexts of width w,
/// sees the same features.
let shared (gen: Generator) (dtype: Dtype) (contextDim: int) (hidden: int list) (layers: Bijector list) =
    wrap gen dtype contextDim hidden (Chain.ofLayers layers)

let private create (gen: Generator) (dtype: Dtype) (dim: int) =
    let inner =
        SplineCoupling.create gen dtype
            { Dim = dim; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh)
              Spline = Transformers.SplineKind.RationalQuadratic; Bins = 5; Bound = 3.0; ContextDim = 4 }
    wrap gen dtype 3 [ 8 ] inner

/// The catalogue entry: an RQ spline coupling conditioned on 4 embedded features of a 3-wide context.
[<CatalogueEntry>]
let entry =
    { Entry.exact "context-embedding" build create with
        ContextDim = Some 3
        IdentityAtInit = true }
