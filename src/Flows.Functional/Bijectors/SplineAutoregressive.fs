/// Spline MAF (RQ-NSF (AR), Durkan et al. 2019, "Neural Spline Flows"; with the linear and quadratic
/// splines of Müller et al. 2019 or the cubic of Durkan et al. 2019, "Cubic-Spline Flows"): the
/// masked-autoregressive layer with a monotone spline on [−B, B] (identity tails) as its transformer:
///   inverse (data → base)  z = S(x; θ(x)), one pass (fast density), log|det| = Σ log S'(x)
///   forward (base → data)  x = S⁻¹(z; θ(x)), one feature at a time (sampling).
module Flows.Bijectors.SplineAutoregressive

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A spline MAF layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Masked residual blocks of width `Hidden.Head` (0: a plain masked MLP).
      ResidualBlocks: int
      /// Which monotone spline.
      Spline: SplineKind
      /// Bins K per spline.
      Bins: int
      /// The spline acts on [−Bound, Bound], the identity outside.
      Bound: float
      ContextDim: int }

/// The spline MAF layer named "<spline>-spline-maf": the MADE's last layer starts at zero, so the
/// layer starts as the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let spline = SplineKind.transformer spec.Bins spec.Bound spec.Spline
    MaskedAutoregressive.layer gen dtype $"{spline.Name}-spline-maf"
        [ "spline", Setting.Text spline.Name; "bins", Setting.Int spec.Bins; "bound", Setting.Float spec.Bound ]
        { Dim = spec.Dim; Hidden = spec.Hidden; Order = spec.Order; Activation = spec.Activation; ResidualBlocks = spec.ResidualBlocks
          ContextDim = spec.ContextDim; Transformer = spline }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    create (Generator 0UL) dtype
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation; ResidualBlocks = made.ResidualBlocks
          Spline = SplineKind.parse (Settings.text "spline" s); Bins = Settings.int "bins" s; Bound = Settings.float "bound" s
          ContextDim = made.ContextDim }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    let d = spec 1
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = (SplineKind.transformer d.Bins d.Bound d.Spline).InverseKind
        IdentityAtInit = true }

let private spec (spline: SplineKind) (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8; 8 ]; Order = order; Activation = Activation.Tanh; ResidualBlocks = 0; Spline = spline; Bins = 5; Bound = 3.0
      ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "rq-spline-maf" (spec SplineKind.RationalQuadratic Order.Reversed)

[<CatalogueEntry>]
let linearEntry = entryFor "linear-fixed-spline-maf" (spec (SplineKind.Linear PiecewiseLinear.Widths.Fixed) Order.Reversed)

[<CatalogueEntry>]
let learntLinearEntry = entryFor "linear-spline-maf" (spec (SplineKind.Linear PiecewiseLinear.Widths.Learnt) Order.Natural)

[<CatalogueEntry>]
let quadraticEntry = entryFor "quadratic-spline-maf" (spec SplineKind.Quadratic Order.Reversed)

[<CatalogueEntry>]
let cubicEntry = entryFor "cubic-spline-maf" (spec SplineKind.Cubic Order.Reversed)
