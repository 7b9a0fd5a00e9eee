/// Unconstrained monotonic neural network flow (UMNN, Wehenkel & Louppe 2019, "Unconstrained
/// Monotonic Neural Networks"): the masked-autoregressive layer with the integral of a positive
/// network (`Integrand`) as its transformer, the MADE giving each feature's offset and embedding:
///   inverse (data → base)  z_i = β(h_i) + ∫_0^{x_i} f(t, h_i) dt by quadrature, one pass (fast density)
///   forward (base → data)  x by bisection and a Newton step, one feature at a time (sampling), to
///   `Transformer.tolerance`.
/// The log-det is the exact derivative of the integral, so the quadrature's own Jacobian agrees only
/// to the quadrature error.
module Flows.Bijectors.UnconstrainedMonotone

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A UMNN layer's hyperparameters.
type Spec =
    { Dim: int
      /// Hidden widths of the MADE that embeds x_<i.
      Hidden: int list
      Order: Order
      /// Activation of the MADE's hidden layers.
      Activation: Activation
      /// Size of each feature's embedding h_i.
      Embedding: int
      /// Hidden widths of the integrand network of (t, h_i).
      Integrand: int list
      /// Activation of the integrand's hidden layers (a smooth one adds no kinks of its own).
      IntegrandActivation: Activation
      Quadrature: Quadrature
      /// Resolution of the rule: intervals for Clenshaw–Curtis, points for Gauss–Legendre.
      Nodes: int
      ContextDim: int }

/// The UMNN layer; the MADE's and the integrand's last layers start at zero, so β = 0, f ≡ 1 and the
/// layer starts as the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let transformer = Integrand.transformer gen dtype spec.Embedding spec.Integrand spec.IntegrandActivation spec.Quadrature spec.Nodes
    MaskedAutoregressive.layer gen dtype "umnn"
        [ "embedding", Setting.Int spec.Embedding
          "integrand", Setting.Ints(Array.ofList spec.Integrand)
          "integrandActivation", Setting.Text(Activation.name spec.IntegrandActivation)
          "quadrature", Setting.Text(Quadrature.name spec.Quadrature)
          "nodes", Setting.Int spec.Nodes ]
        { Dim = spec.Dim; Hidden = spec.Hidden; Order = spec.Order; Activation = spec.Activation; ResidualBlocks = 0
          ContextDim = spec.ContextDim; Transformer = transformer }

/// A UMNN layer: embeddings of 8, a [32; 32] tanh integrand, Clenshaw–Curtis on 33 nodes.
let umnn (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (order: Order) =
    create gen dtype
        { Dim = dim; Hidden = hidden; Order = order; Activation = Activation.Tanh; Embedding = 8; Integrand = [ 32; 32 ]
          IntegrandActivation = Activation.Tanh; Quadrature = Quadrature.ClenshawCurtis; Nodes = 32; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    create (Generator 0UL) dtype
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation
          Embedding = Settings.int "embedding" s; Integrand = List.ofArray (Settings.ints "integrand" s)
          IntegrandActivation = Activation.parse (Settings.text "integrandActivation" s)
          Quadrature = Quadrature.parse (Settings.text "quadrature" s); Nodes = Settings.int "nodes" s; ContextDim = made.ContextDim }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = InverseKind.Iterative Transformer.tolerance
        // the quadrature error of Σ log f per row, within this bound on the law suite's draws (0 where
        // the network's output does not cross 0 on [0, x])
        LogDetKind = LogDetKind.Approximate 1e-3
        IdentityAtInit = true }

// Clenshaw–Curtis here; the conditional test variant integrates by Gauss–Legendre, so the law
// suite covers both rules
let private spec (order: Order) (quadrature: Quadrature) (nodes: int) (dim: int) =
    { Dim = dim; Hidden = [ 8 ]; Order = order; Activation = Activation.Tanh; Embedding = 2; Integrand = [ 8 ]
      IntegrandActivation = Activation.Tanh; Quadrature = quadrature; Nodes = nodes; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "umnn" (spec Order.Reversed Quadrature.ClenshawCurtis 24)
