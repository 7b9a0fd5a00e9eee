/// Spline coupling (RQ-NSF (C), Durkan et al. 2019, "Neural Spline Flows"; linear and quadratic
/// couplings of Müller et al. 2019; cubic of Durkan et al. 2019, "Cubic-Spline Flows"): the
/// coupling layer with a monotone spline on [−B, B] (identity tails) as its transformer:
///   forward (base → data)  y_A = x_A,  y_B = S(x_B; θ(x_A)),   log|det J| = Σ log S'(x_B).
module Flows.Bijectors.SplineCoupling

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A spline coupling's hyperparameters.
type Spec =
    { Dim: int
      Mask: Coupling.Mask
      Conditioner: Conditioner
      /// Which monotone spline.
      Spline: SplineKind
      /// Bins K per spline.
      Bins: int
      /// The spline acts on [−Bound, Bound], the identity outside.
      Bound: float
      ContextDim: int }

/// A spline coupling layer named "<spline>-spline-coupling"; the network's last layer starts at
/// zero, so the layer starts as the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let spline = SplineKind.transformer spec.Bins spec.Bound spec.Spline
    Coupling.layer gen dtype $"{spline.Name}-spline-coupling"
        [ "spline", Setting.Text spline.Name; "bins", Setting.Int spec.Bins; "bound", Setting.Float spec.Bound ]
        { Dim = spec.Dim; Mask = spec.Mask; Conditioner = spec.Conditioner; Transformer = spline; Layout = Coupling.Layout.ByFeature
          ContextDim = spec.ContextDim }

/// RQ-NSF (C) with an MLP conditioner (ReLU), K bins on [−bound, bound].
let neuralSpline (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (bins: int) (bound: float) (mask: Coupling.Mask) =
    create gen dtype
        { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp(hidden, Activation.Relu); Spline = SplineKind.RationalQuadratic
          Bins = bins; Bound = bound; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    create (Generator 0UL) dtype
        { Dim = Settings.int "dim" s; Mask = Coupling.parseMask (Settings.text "mask" s); Conditioner = Conditioner.ofSettings s
          Spline = SplineKind.parse (Settings.text "spline" s); Bins = Settings.int "bins" s; Bound = Settings.float "bound" s
          ContextDim = Settings.int "contextDim" s }

// Random perturbs by 0.3, small enough that the random splines keep slopes above about e^-6,
// where float64 round trips of composed layers still meet the laws' 1e-9
let private entryFor (name: string) (spec: int -> Spec) : Entry =
    let d = spec 2
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = (SplineKind.transformer d.Bins d.Bound d.Spline).InverseKind
        IdentityAtInit = true }

let private spec (spline: SplineKind) (mask: Coupling.Mask) (dim: int) =
    { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh); Spline = spline; Bins = 5; Bound = 3.0; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "rq-spline-coupling" (spec SplineKind.RationalQuadratic (Coupling.Mask.Half false))

[<CatalogueEntry>]
let linearEntry = entryFor "linear-spline-coupling" (spec (SplineKind.Linear PiecewiseLinear.Widths.Learnt) (Coupling.Mask.Half false))

[<CatalogueEntry>]
let fixedLinearEntry = entryFor "linear-fixed-spline-coupling" (spec (SplineKind.Linear PiecewiseLinear.Widths.Fixed) (Coupling.Mask.Alternating true))

[<CatalogueEntry>]
let quadraticEntry = entryFor "quadratic-spline-coupling" (spec SplineKind.Quadratic (Coupling.Mask.Alternating false))

[<CatalogueEntry>]
let cubicEntry = entryFor "cubic-spline-coupling" (spec SplineKind.Cubic (Coupling.Mask.Half true))
