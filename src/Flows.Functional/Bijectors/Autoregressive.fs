/// Masked autoregressive flow (MAF, Papamakarios et al. 2017) with an affine transformer on a MADE
/// conditioner, and the inverse autoregressive flow (IAF, Kingma et al. 2016) as the inverted MAF:
///   forward (base → data)  x_d = z_d·exp(α_d(x_<d)) + μ_d(x_<d), one feature at a time
///   inverse (data → base)  z = (x − μ(x))·exp(−α(x)), one pass (fast density)
///   log|det J_forward| = Σ_d α_d, with α = c·(2/π)·atan(s/c) so |α| < c and exp cannot overflow.
/// "<d" is the MADE order saved in the settings; the IAF swaps the two directions (fast sampling).
module Flows.Bijectors.Autoregressive

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A MAF layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Masked residual blocks of width `Hidden.Head` (0: a plain masked MLP).
      ResidualBlocks: int
      /// Bound c on the log-scale: |α| < c.
      Clamp: float
      ContextDim: int }

/// The MAF layer: the MADE's last layer starts at zero, so the layer starts as the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    Guard.positiveFloat (nameof spec.Clamp) spec.Clamp
    // the density direction z = (x − μ)·exp(−α) is the transformer's forward: the inverted affine map
    let transformer = Transformer.invert (Affine.transformer (Coupling.logScale (Coupling.ScaleMap.SoftClamp spec.Clamp)))
    MaskedAutoregressive.layer gen dtype "maf" [ "clamp", Setting.Float spec.Clamp ]
        { Dim = spec.Dim; Hidden = spec.Hidden; Order = spec.Order; Activation = spec.Activation; ResidualBlocks = spec.ResidualBlocks
          ContextDim = spec.ContextDim; Transformer = transformer }

/// The IAF: a MAF run the other way, so sampling is one pass and density D passes.
let iaf (gen: Generator) (dtype: Dtype) (spec: Spec) = { Bijector.invert (create gen dtype spec) with Name = "iaf" }

/// MAF with tanh hidden layers and log-scale clamp 3.
let maf (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (order: Order) =
    create gen dtype { Dim = dim; Hidden = hidden; Order = order; Activation = Activation.Tanh; ResidualBlocks = 0; Clamp = 3.0; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    let spec =
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation; ResidualBlocks = made.ResidualBlocks
          Clamp = Settings.float "clamp" s; ContextDim = made.ContextDim }
    if s.ContainsKey "inverted" then iaf (Generator 0UL) dtype spec else create (Generator 0UL) dtype spec

let private entryFor (name: string) (build: Generator -> Dtype -> Spec -> Bijector) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> build g t (spec d)) with
        IdentityAtInit = true }

let private spec (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8; 8 ]; Order = order; Activation = Activation.Tanh; ResidualBlocks = 0; Clamp = 3.0; ContextDim = 0 }

[<CatalogueEntry>]
let mafEntry = entryFor "maf" create (spec Order.Natural)

[<CatalogueEntry>]
let iafEntry = entryFor "iaf" iaf (spec Order.Reversed)
