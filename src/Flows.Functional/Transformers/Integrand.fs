/// The unconstrained monotonic neural network transformer (UMNN, Wehenkel & Louppe 2019,
/// "Unconstrained Monotonic Neural Networks"). Per feature, with raw parameters β and an embedding h
/// (of x_<i in a MAF), and one integrand network shared by all features,
///   y = β + ∫_0^x f(t, h) dt, f = ELU(net(t, h)) + 1 > 0, the integral by Clenshaw–Curtis (or
///   Gauss–Legendre) quadrature on [0, x]; log dy/dx = log f(x, h); the inverse by bisection and a
///   Newton step.
/// Gradients reach the parameters by plain autodiff through the quadrature (its nodes x·(s_j + 1)/2
/// move with x): the exact gradient of the quadrature, with memory per node, where the paper's
/// Leibniz-rule backward approximates it by a second quadrature in constant memory.
/// The log-det is the exact derivative of the integral; the quadrature's own derivative differs from
/// it by the quadrature error. ELU + 1 has a jump in its second derivative where the network's output
/// crosses 0, so the error falls only algebraically, about as n⁻².
namespace Flows.Transformers

open Flows
open Flows.Nn
open Flows.Tensors

/// The UMNN transformer of every feature: the offsets β [n; D], the embeddings h [n; D; E], the
/// integrand network, and the rule mapped to [0, 1] (nodes (s_j + 1)/2, weights w_j/2, each [m]).
type Integrand =
    { Offset: Tensor
      Embedding: Tensor
      Net: Params
      Activation: Activation
      Nodes: Tensor
      Weights: Tensor }

/// Functions of the UMNN transformer, element-wise in the features.
[<RequireQualifiedAccess>]
module Integrand =

    /// The rule's nodes and weights on [0, 1].
    let rule (quadrature: Quadrature) (nodes: int) =
        let s, w = Quadrature.rule quadrature nodes
        Constant.ofArray(s |> Array.map (fun v -> (v + 1.0) / 2.0), [| s.Length |]), Constant.ofArray(w |> Array.map (fun v -> v / 2.0), [| w.Length |])

    /// The transformer from raw conditioner outputs [n; D; 1 + E] (β, then h) and the integrand net.
    let ofRaw (net: Params) (activation: Activation) (nodes: Constant, weights: Constant) (raw: Tensor) =
        { Offset = raw.narrow(2, 0, 1).squeeze 2
          Embedding = raw.narrow(2, 1, raw.shape[2] - 1)
          Net = net
          Activation = activation
          Nodes = nodes.Like raw
          Weights = weights.Like raw }

    /// The integrand network's output o at points t [n; D; m], each with its feature's embedding:
    /// f = ELU(o) + 1, log f = log1p(relu o) − relu(−o) (exact on both sides of 0, no overflow).
    let output (it: Integrand) (t: Tensor) =
        let n, dim, m, e = t.shape[0], t.shape[1], t.shape[2], it.Embedding.shape[2]
        let inputs = Tensor.cat([| t.unsqueeze 3; it.Embedding.unsqueeze(2).expand [| n; dim; m; e |] |], 3)
        (Mlp.apply it.Activation it.Net (inputs.reshape [| n * dim * m; 1 + e |])).reshape [| n; dim; m |]

    /// f(t, h) at points t [n; D; m].
    let value (it: Integrand) (t: Tensor) = (output it t).elu(1.0) + 1.0

    /// z and log dz/dx for x [n; D]: β + x · Σ_j (w_j/2) f(x (s_j + 1)/2), and log f(x) from the
    /// same network pass (x rides along as one more point).
    let apply (it: Integrand) (x: Tensor) =
        let m = it.Nodes.shape[0]
        let points = Tensor.cat([| x.unsqueeze(2) * it.Nodes; x.unsqueeze(2) |], 2)
        let o = output it points
        let f = o.narrow(2, 0, m).elu(1.0) + 1.0
        let atX = o.narrow(2, m, 1).squeeze 2
        it.Offset + x * (f * it.Weights).sum(2), atX.relu().log1p() - (-atX).relu()

    /// The UMNN transformer named "umnn": raw parameters (β, h) of an embedding of `embedding`, and an
    /// integrand network of (t, h) with `hidden` widths whose last layer starts at zero (f ≡ 1), kept
    /// as the layer's "integrand" parameters; the integral by `quadrature` at resolution `nodes`.
    let transformer (gen: Generator) (dtype: Dtype) (embedding: int) (hidden: int list) (activation: Activation) (quadrature: Quadrature) (nodes: int) =
        Guard.positive (nameof embedding) embedding
        Guard.positive (nameof nodes) nodes
        let net = Mlp.create gen dtype ((1 + embedding) :: hidden @ [ 1 ]) true
        let rule' = rule quadrature nodes
        let integrand (p: Params) (raw: Tensor) = ofRaw (p.Scope "integrand") activation rule' raw
        // bisection in a bracket found by doubling, on constants (the network's too)
        let inverse (p: Params) (y: Tensor) (raw: Tensor) =
            let constant = apply (integrand (p.Map(fun t -> t.noDiff())) (raw.noDiff()))
            Transformer.solve constant (apply (integrand p raw)) (RootFind.expandBracket (constant >> fst) y) y
        { Name = "umnn"
          ParameterCount = 1 + embedding
          Params = net.Prefixed "integrand"
          Forward = fun p x raw -> apply (integrand p raw) x
          Inverse = inverse
          InverseKind = InverseKind.Iterative Transformer.tolerance
          InitialNoise = 0.0 }
