/// One context embedding shared by a chain of layers (nflows' embedding_net): the same as running
/// the layers one by one on the context embedded once by hand, and saved and reloaded bit for bit.
module Flows.Properties.Bijectors.SharedEmbeddingTests

open System
open System.IO
open Xunit
open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Io
open Flows.Nn
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

let private exact = { Abs = 1e-12; Rel = 1e-12 }

let private splineCoupling (g: Generator) (dtype: Dtype) (dim: int) (flip: bool) (contextDim: int) =
    SplineCoupling.create g dtype
        { Dim = dim; Mask = Coupling.Mask.Half flip; Conditioner = Conditioner.Mlp([ 8 ], Activation.Tanh)
          Spline = Transformers.SplineKind.RationalQuadratic; Bins = 4; Bound = 3.0; ContextDim = contextDim }

let private affineCoupling (g: Generator) (dtype: Dtype) (dim: int) (flip: bool) (contextDim: int) =
    Coupling.create g dtype
        { Dim = dim; Mask = Coupling.Mask.Half flip; Conditioner = Conditioner.Mlp([ 8 ], Activation.Tanh)
          ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; Affine = true; ContextDim = contextDim }

// the embedding by hand: tanh(c W0ᵀ + b0) W1ᵀ + b1
let private embedByHand (p: Params) (c: Tensor) =
    (c.matmul(p["embedding.0.weight"].transpose()) + p["embedding.0.bias"]).tanh().matmul(p["embedding.1.weight"].transpose()) + p["embedding.1.bias"]

// the wrapped layers with the wrapper's (trained or observed) parameters and buffers
let private layersOf (wrapped: Bijector) (layers: Bijector list) =
    layers |> List.mapi (fun i b -> { b with Params = wrapped.Params.Scope $"inner.{i}"; Buffers = wrapped.Buffers.Scope $"inner.{i}" })

[<Fact>]
let ``every layer sees the context embedded once, as by hand`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let layers = [ splineCoupling g Dtype.Float64 3 false 4; Elementwise.affine Dtype.Float64 3; affineCoupling g Dtype.Float64 3 true 4 ]
        let wrapped = ContextEmbedding.shared g Dtype.Float64 2 [ 8 ] layers |> Entry.perturb g 0.3
        let x, c = Draw.normal g [| 7; 3 |], Draw.normal g [| 7; 2 |]
        let byHand = Context.ofCondition (embedByHand wrapped.Params c)
        let y, logDet = Bijector.forward (Context.ofCondition c) x wrapped
        let y', logDet' = Compose.forward byHand x (layersOf wrapped layers)
        Close.tensors "forward" exact y' y
        Close.tensors "forward log-det" exact logDet' logDet
        let back, inverseLogDet = Bijector.inverse (Context.ofCondition c) y wrapped
        let back', inverseLogDet' = Compose.inverse byHand y (layersOf wrapped layers)
        Close.tensors "inverse" exact back' back
        Close.tensors "inverse log-det" exact inverseLogDet' inverseLogDet)

[<Fact>]
let ``a data-initialised layer observes its inputs under the embedded context`` () =
    let g = Generator 7UL
    // ActNorm sees what the conditional coupling after it maps back, so its statistics depend on the context
    let layers = [ ActNorm.create Dtype.Float64 3; splineCoupling g Dtype.Float64 3 false 4 ]
    let wrapped = ContextEmbedding.shared g Dtype.Float64 2 [ 8 ] layers |> Entry.perturb g 0.3
    let y, c = Draw.normal g [| 32; 3 |], Draw.normal g [| 32; 2 |]
    let observed = Compose.observe (Context.ofCondition c) y [ wrapped ] |> List.head
    let byHand = Compose.observe (Context.ofCondition (embedByHand wrapped.Params c)) y (layersOf wrapped layers)
    List.iteri2 (fun i (b: Bijector) (expected: Bijector) ->
        Array.iter2 (fun (n: string) (t: Tensor) -> Close.tensors $"layer {i} {n}" exact expected.Params[n] t) b.Params.Names b.Params.Values
        Array.iter2 (fun (n: string) (t: Tensor) -> Close.tensors $"layer {i} buffer {n}" exact expected.Buffers[n] t) b.Buffers.Names b.Buffers.Values)
        (layersOf observed layers) byHand
    Assert.Equal(1.0, observed.Buffers["inner.0.initialised"].toScalar())

[<Fact>]
let ``a flow with a shared embedding saved and reloaded gives bit-identical log-densities`` () =
    let g = Generator 23UL
    let dim = 3
    let layers =
        [ ActNorm.create Dtype.Float32 dim
          splineCoupling g Dtype.Float32 dim false 4
          Bijector.invert (affineCoupling g Dtype.Float32 dim true 4)
          Elementwise.affine Dtype.Float32 dim ]
    let flow =
        Flow.create (Distribution.diagonalNormal [| dim |] Dtype.Float32) [ ContextEmbedding.shared g Dtype.Float32 2 [ 16; 8 ] layers |> Entry.perturb g 0.2 ]
    let data, context = g.normal([| 40; dim |], 1.0, 2.0, Dtype.Float32), g.normal([| 40; 2 |], dtype = Dtype.Float32)
    let model = Model.ofFlow 2 (Flow.observe { Condition = Some context; Training = true } data flow)
    let dir = Path.Combine(Path.GetTempPath(), $"flows-test-{Guid.NewGuid():N}")
    let loaded =
        try
            ModelFile.save dir model
            ModelFile.load dir
        finally
            if Directory.Exists dir then Directory.Delete(dir, true)
    let bits (t: Tensor) = t.toArray32() |> Array.map BitConverter.SingleToInt32Bits
    let ctx = Context.ofCondition context
    Assert.Equal<int[]>(bits (Model.logProb ctx data model), bits (Model.logProb ctx data loaded))
    Assert.Equal<int[]>(bits (Model.sample ctx (Generator 3UL) 40 model), bits (Model.sample ctx (Generator 3UL) 40 loaded))
    Assert.Equal<string>(string model.Flow.Layers.Head.Settings, string loaded.Flow.Layers.Head.Settings)

[<Fact>]
let ``layers built for different context widths, or without a catalogue entry, are refused by name`` () =
    let g = Generator 2UL
    let error = Assert.Throws<ArgumentException>(fun () -> Chain.ofLayers [ splineCoupling g Dtype.Float64 2 false 4; affineCoupling g Dtype.Float64 2 true 3 ] |> ignore)
    Assert.Equal("layers", error.ParamName)
    Assert.Contains("layer 1 ('affine-coupling') takes contexts of width 3", error.Message)
    let error = Assert.Throws<ArgumentException>(fun () -> Chain.ofLayers [ Compose.chain "kept" [ Elementwise.affine Dtype.Float64 2 ] ] |> ignore)
    Assert.Contains("no catalogue entry", error.Message)
    let error = Assert.Throws<ArgumentException>(fun () -> ContextEmbedding.shared g Dtype.Float64 2 [ 8 ] [ Elementwise.affine Dtype.Float64 2 ] |> ignore)
    Assert.Contains("takes no context", error.Message)
