/// Spline coupling (RQ-NSF (C), Durkan et al. 2019, "Neural Spline Flows"; linear and quadratic
/// couplings of Müller et al. 2019; cubic of Durkan et al. 2019, "Cubic-Spline Flows"): the
/// conditioning features A pass unchanged; each feature of B goes through its own monotone spline on
/// [−B, B] (identity tails) whose raw parameters a network computes from A and the context:
///   forward (base → data)  y_A = x_A,  y_B = S(x_B; θ(x_A)),   log|det J| = Σ log S'(x_B)
///   inverse (data → base)  x_B = S⁻¹(y_B; θ(y_A)), the spline's own inverse.
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
    Guard.that (nameof spec.Dim) (spec.Dim >= 2) $"a coupling layer needs at least 2 features, got {spec.Dim}"
    let spline = SplineKind.transformer spec.Bins spec.Bound spec.Spline
    let a, b = Coupling.split spec.Dim spec.Mask
    let count = spline.ParameterCount
    let net = Conditioner.create gen dtype (a.Length + spec.ContextDim) (b.Length * count) spec.Conditioner
    let take = Coupling.columns
    let merge = Coupling.merger a b
    let parameters (p: Params) (ctx: Context) (xa: Tensor) =
        let input = Coupling.conditionerInput spec.ContextDim ctx xa
        (Conditioner.apply spec.Conditioner p input).reshape [| xa.shape[0]; b.Length; count |]
    let forward (p: Params) (ctx: Context) (x: Tensor) =
        let xa = take a x
        let yb, logDerivative = spline.Forward (take b x) (parameters p ctx xa)
        merge xa yb, logDerivative.sum(1)
    let inverse (p: Params) (ctx: Context) (y: Tensor) =
        let ya = take a y
        let xb, logDerivative = spline.Inverse (take b y) (parameters p ctx ya)
        merge ya xb, logDerivative.sum(1)
    let settings =
        Settings.ofList (
            [ "dim", Setting.Int spec.Dim
              "mask", Setting.Text(Coupling.maskName spec.Mask)
              "spline", Setting.Text spline.Name
              "bins", Setting.Int spec.Bins
              "bound", Setting.Float spec.Bound
              "contextDim", Setting.Int spec.ContextDim ]
            @ Conditioner.settings spec.Conditioner)
    Bijector.create $"{spline.Name}-spline-coupling" settings [| spec.Dim |] (net.Prefixed "net")
        (fun p ctx x -> forward (p.Scope "net") ctx x) (fun p ctx y -> inverse (p.Scope "net") ctx y)

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
