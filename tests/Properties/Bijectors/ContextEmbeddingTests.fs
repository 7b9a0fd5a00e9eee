/// The context embedding net: the wrapped bijector sees MLP(c), computed here by hand.
module Flows.Properties.Bijectors.ContextEmbeddingTests

open Xunit
open Flows
open Flows.Bijectors
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

[<Fact>]
let ``the wrapped bijector sees the embedded context and nothing else changes`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let wrapped = (Fixtures.find "context-embedding").Random g Dtype.Float64 3
        let x, c = Draw.normal g [| 6; 3 |], Draw.normal g [| 6; 3 |]
        // the embedding by hand: tanh(c W0ᵀ + b0) W1ᵀ + b1
        let p = wrapped.Params
        let features = (c.matmul(p["embedding.0.weight"].transpose()) + p["embedding.0.bias"]).tanh().matmul(p["embedding.1.weight"].transpose()) + p["embedding.1.bias"]
        let inner = { (Fixtures.find "rq-spline-coupling").Build Dtype.Float64 (wrapped.Settings |> Map.toSeq |> Seq.choose (fun (k, v) -> if k.StartsWith "inner." then Some(k.Substring 6, v) else None) |> Map.ofSeq) with Params = p.Scope "inner" }
        let y, logDet = Bijector.forward (Context.ofCondition c) x wrapped
        let y', logDet' = Bijector.forward (Context.ofCondition features) x inner
        Close.tensors "state" Tolerance.float64 y' y
        Close.tensors "log-det" Tolerance.float64 logDet' logDet
        let back, _ = Bijector.inverse (Context.ofCondition c) y wrapped
        Close.tensors "round trip" Tolerance.float64 x back)

[<Fact>]
let ``a bijector without a context, or a context of the wrong width, is refused by name`` () =
    let g = Generator 1UL
    let plain = (Fixtures.find "rq-spline-coupling").Create g Dtype.Float64 2
    let error = Assert.Throws<System.ArgumentException>(fun () -> ContextEmbedding.wrap g Dtype.Float64 3 [ 4 ] plain |> ignore)
    Assert.Contains("takes no context", error.Message)
    let wrapped = (Fixtures.find "context-embedding").Create g Dtype.Float64 2
    let error = Assert.Throws<System.ArgumentException>(fun () -> Bijector.forward (Context.ofCondition (Tensor.zeros([| 4; 5 |], Dtype.Float64))) (Tensor.zeros([| 4; 2 |], Dtype.Float64)) wrapped |> ignore)
    Assert.Contains("expected contexts [batch; 3]", error.Message)
