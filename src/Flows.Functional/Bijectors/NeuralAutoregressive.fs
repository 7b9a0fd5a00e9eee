/// Neural autoregressive flow (NAF, Huang et al. 2018, "Neural Autoregressive Flows"): the
/// masked-autoregressive layer with the deep sigmoidal flow (`Dsf`) as its transformer. Per feature,
///   inverse (data → base)  z = σ⁻¹(Σ_j w_j σ(a_j x + b_j)), one pass (fast density)
///   forward (base → data)  x by bisection and a Newton step, one feature at a time (sampling), to
///   `Transformer.tolerance`.
module Flows.Bijectors.NeuralAutoregressive

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A NAF layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Sigmoid units K of each feature's DSF.
      Units: int
      ContextDim: int }

/// The NAF layer; the MADE's last layer starts at zero, so every unit starts with slope 1 and
/// weight 1/K, the shifts spread over [−2, 2].
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    MaskedAutoregressive.layer gen dtype "naf" [ "units", Setting.Int spec.Units ]
        { Dim = spec.Dim; Hidden = spec.Hidden; Order = spec.Order; Activation = spec.Activation; ResidualBlocks = 0
          ContextDim = spec.ContextDim; Transformer = Dsf.transformer spec.Units }

/// A NAF layer with tanh hidden layers and 8 sigmoid units per feature.
let naf (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (order: Order) =
    create gen dtype { Dim = dim; Hidden = hidden; Order = order; Activation = Activation.Tanh; Units = 8; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    create (Generator 0UL) dtype
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation
          Units = Settings.int "units" s; ContextDim = made.ContextDim }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = InverseKind.Iterative Transformer.tolerance }

let private spec (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8 ]; Order = order; Activation = Activation.Tanh; Units = 4; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "naf" (spec Order.Reversed)
