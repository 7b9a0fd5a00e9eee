/// Spline MAF (RQ-NSF (AR), Durkan et al. 2019, "Neural Spline Flows"; with the linear and quadratic
/// splines of Müller et al. 2019 or the cubic of Durkan et al. 2019, "Cubic-Spline Flows"): each
/// feature goes through a monotone spline on [−B, B] (identity tails) whose raw parameters a MADE
/// computes from the features of smaller order (and the context):
///   inverse (data → base)  z = S(x; θ(x)), one pass (fast density), log|det| = Σ log S'(x)
///   forward (base → data)  x = S⁻¹(z; θ(x)), D sequential passes (sampling).
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
    let count = spline.ParameterCount
    let made, net =
        Made.create gen dtype
            { Dim = spec.Dim; Hidden = spec.Hidden; Multiplier = count; Order = spec.Order; ContextDim = spec.ContextDim
              ResidualBlocks = spec.ResidualBlocks; Activation = spec.Activation }
    let dim = spec.Dim
    let parameters (p: Params) (ctx: Context) (x: Tensor) = (Made.apply made p ctx.Condition x).reshape [| x.shape[0]; dim; count |]
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        // pass t fixes the dimensions of degree t; the last pass saw every earlier one final
        let mutable x = z.zerosLike()
        let mutable logDet = Bijector.zeroLogDet z
        for _ in 1 .. dim do
            let x', logDerivative = spline.Inverse z (parameters p ctx x)
            x <- x'
            logDet <- logDerivative.sum(1)
        x, logDet
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let z, logDerivative = spline.Forward x (parameters p ctx x)
        z, logDerivative.sum(1)
    let settings =
        Settings.ofList ([ "spline", Setting.Text spline.Name; "bins", Setting.Int spec.Bins; "bound", Setting.Float spec.Bound ] @ Made.settings made)
    Bijector.create $"{spline.Name}-spline-maf" settings [| dim |] (net.Prefixed "made")
        (fun p ctx z -> forward (p.Scope "made") ctx z) (fun p ctx x -> inverse (p.Scope "made") ctx x)

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
