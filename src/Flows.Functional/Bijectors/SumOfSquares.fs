/// Sum-of-squares polynomial flow (SOS, Jaini, Selby & Yu 2019, "Sum-of-Squares Polynomial Flow"):
/// the masked-autoregressive layer with the sum-of-squares polynomial (`Polynomial`) as its transformer:
///   inverse (data → base)  z = c + ∫_0^x (ε + Σ_k q_k(t(u))²) du, one pass (fast density)
///   forward (base → data)  x by bisection and a Newton step, one feature at a time (sampling), to
///   `Transformer.tolerance`.
module Flows.Bijectors.SumOfSquares

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// An SOS layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Degree r of each squared polynomial (z is then a polynomial of degree 2r + 1 inside ±B).
      Degree: int
      /// Number of squares K.
      Squares: int
      /// The polynomial part acts on |x| ≤ Bound; outside it z is linear.
      Bound: float
      /// The floor ε added to the integrand, so dz/dx ≥ ε > 0.
      Floor: float
      ContextDim: int }

/// The SOS layer; the transformer's initial noise makes it start near (not at) the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let transformer = Polynomial.transformer spec.Squares spec.Degree spec.Bound spec.Floor
    MaskedAutoregressive.layer gen dtype "sos"
        [ "degree", Setting.Int spec.Degree
          "squares", Setting.Int spec.Squares
          "polynomialBound", Setting.Float spec.Bound
          "floor", Setting.Float spec.Floor ]
        { Dim = spec.Dim; Hidden = spec.Hidden; Order = spec.Order; Activation = spec.Activation; ResidualBlocks = 0
          ContextDim = spec.ContextDim; Transformer = transformer }

/// An SOS layer as in the paper's experiments: K = 3 squares of degree r = 2 (z of degree 5), on
/// |x| ≤ 5 with floor 10⁻³, tanh hidden layers.
let sos (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (order: Order) =
    create gen dtype
        { Dim = dim; Hidden = hidden; Order = order; Activation = Activation.Tanh; Degree = 2; Squares = 3
          Bound = 5.0; Floor = 1e-3; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    create (Generator 0UL) dtype
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation
          Degree = Settings.int "degree" s; Squares = Settings.int "squares" s
          Bound = Settings.float "polynomialBound" s; Floor = Settings.float "floor" s; ContextDim = made.ContextDim }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = InverseKind.Iterative Transformer.tolerance }

let private spec (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8 ]; Order = order; Activation = Activation.Tanh; Degree = 2; Squares = 3
      Bound = 4.0; Floor = 1e-3; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "sos" (spec Order.Reversed)
