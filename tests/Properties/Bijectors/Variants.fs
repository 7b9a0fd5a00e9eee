/// Test-only variants of library bijectors: other masks, scale maps, conditioners and orders, and
/// the conditional forms, so that the laws cover the configurations users build. Each carries the
/// name of its case; the bijector it draws is named after the library layer whose codec rebuilds it.
module Flows.Properties.Bijectors.Variants

open Flows
open Flows.Fixtures
open Flows.Bijectors
open Flows.Continuous
open Flows.Models
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A variant of the library entry `layer`: its codec and dimensions, another constructor and
/// context, random instances perturbed by N(0, scale²).
let private variant (name: string) (layer: string) (contextDim: int) (scale: float) (create: Generator -> Dtype -> int -> Bijector) : Fixture =
    { Library.find layer with
        Name = name
        Create = create
        Random = (fun g t d -> create g t d |> Entry.perturb g scale)
        ContextDim = (if contextDim = 0 then None else Some contextDim) }

let private coupling (affine: bool) (scale: Coupling.ScaleMap) (mask: Coupling.Mask) (contextDim: int) (dim: int) : Coupling.Spec =
    { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh); ScaleMap = scale; Affine = affine; ContextDim = contextDim }

let private couplings =
    let make (spec: int -> Coupling.Spec) g t d = Coupling.create g t (spec d)
    [ variant "affine-coupling-exp" "affine-coupling" 0 0.3 (make (coupling true Coupling.ScaleMap.Exp (Coupling.Mask.Alternating true) 0))
      { variant "affine-coupling-sigmoid" "affine-coupling" 0 0.3 (make (coupling true Coupling.ScaleMap.Sigmoid (Coupling.Mask.Half true) 0)) with
          IdentityAtInit = false }
      variant "affine-coupling-residual" "affine-coupling" 0 0.3
          (make (fun d -> { coupling true (Coupling.ScaleMap.SoftClamp 2.0) (Coupling.Mask.Alternating false) 0 d with Conditioner = Conditioner.Residual(8, 2, Activation.Elu) }))
      { variant "affine-coupling-checkerboard" "affine-coupling" 0 0.3 (make (coupling true (Coupling.ScaleMap.SoftClamp 2.0) (Coupling.Mask.Checkerboard(2, 2, false)) 0)) with
          Dims = [ 4; 8 ] }
      variant "conditional-affine-coupling" "affine-coupling" 3 0.3 (make (coupling true (Coupling.ScaleMap.SoftClamp 2.0) (Coupling.Mask.Half false) 3)) ]

let private splineCouplings =
    let spec (spline: SplineKind) (mask: Coupling.Mask) (contextDim: int) (dim: int) : SplineCoupling.Spec =
        { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh); Spline = spline; Bins = 5; Bound = 3.0; ContextDim = contextDim }
    let make (spec: int -> SplineCoupling.Spec) g t d = SplineCoupling.create g t (spec d)
    // a smaller perturbation keeps the residual conditioner's splines' slopes above about e^-6
    [ variant "rq-spline-coupling-residual" "rq-spline-coupling" 0 0.1
          (make (fun d -> { spec SplineKind.RationalQuadratic (Coupling.Mask.Alternating true) 0 d with Conditioner = Conditioner.Residual(8, 1, Activation.Elu) }))
      variant "conditional-rq-spline-coupling" "rq-spline-coupling" 3 0.3 (make (spec SplineKind.RationalQuadratic (Coupling.Mask.Half true) 3))
      variant "conditional-quadratic-spline-coupling" "quadratic-spline-coupling" 3 0.3 (make (spec SplineKind.Quadratic (Coupling.Mask.Half true) 3)) ]

let private autoregressive =
    let maf (order: Order) (contextDim: int) (dim: int) : Autoregressive.Spec =
        { Dim = dim; Hidden = [ 8; 8 ]; Order = order; Activation = Activation.Tanh; ResidualBlocks = 0; Clamp = 3.0; ContextDim = contextDim }
    let spline (kind: SplineKind) (order: Order) (contextDim: int) (dim: int) : SplineAutoregressive.Spec =
        { Dim = dim; Hidden = [ 8; 8 ]; Order = order; Activation = Activation.Tanh; ResidualBlocks = 0; Spline = kind; Bins = 5; Bound = 3.0; ContextDim = contextDim }
    [ variant "maf-residual" "maf" 0 0.3 (fun g t d ->
          Autoregressive.create g t { maf (Order.Random(17 + d)) 0 d with Hidden = [ 8 ]; ResidualBlocks = 2; Activation = Activation.Elu })
      variant "conditional-maf" "maf" 3 0.3 (fun g t d -> Autoregressive.create g t (maf Order.Natural 3 d))
      variant "conditional-rq-spline-maf" "rq-spline-maf" 3 0.3 (fun g t d -> SplineAutoregressive.create g t (spline SplineKind.RationalQuadratic (Order.Random 5) 3 d))
      variant "conditional-linear-spline-maf" "linear-spline-maf" 3 0.3 (fun g t d ->
          SplineAutoregressive.create g t (spline (SplineKind.Linear PiecewiseLinear.Widths.Learnt) (Order.Random 5) 3 d))
      variant "conditional-sos" "sos" 3 0.3 (fun g t d ->
          SumOfSquares.create g t
              { Dim = d; Hidden = [ 8 ]; Order = Order.Random 7; Activation = Activation.Tanh; Degree = 2; Squares = 3; Bound = 4.0; Floor = 1e-3; ContextDim = 3 })
      // Gauss–Legendre here, Clenshaw–Curtis in the library entry: the laws cover both rules
      variant "conditional-umnn" "umnn" 3 0.3 (fun g t d ->
          UnconstrainedMonotone.create g t
              { Dim = d; Hidden = [ 8 ]; Order = Order.Random 7; Activation = Activation.Tanh; Embedding = 2; Integrand = [ 8 ]
                IntegrandActivation = Activation.Tanh; Quadrature = Quadrature.GaussLegendre; Nodes = 24; ContextDim = 3 })
      variant "conditional-naf" "naf" 3 0.3 (fun g t d ->
          NeuralAutoregressive.create g t { Dim = d; Hidden = [ 8 ]; Order = Order.Random 7; Activation = Activation.Tanh; Units = 4; ContextDim = 3 })
      variant "conditional-bnaf" "bnaf" 3 0.3 (fun g t d -> BlockNeuralAutoregressive.create g t { Dim = d; Hidden = [ 4; 4 ]; ContextDim = 3 }) ]

let private conditionalResidualAndContinuous =
    let otFlow = { OtFlow.defaults with Width = 4; Rank = 2; EndTime = 0.5; Tolerance = 1e-7; ContextDim = 2 }
    let cnf = { Cnf.defaults with Hidden = [ 8 ]; ContextDim = 2 }
    [ variant "conditional-residual" "residual" 3 1.0 (Residual.createConditional 3 { Residual.defaults with Hidden = [ 8 ] })
      variant "conditional-cnf" "cnf" 2 0.3 (Cnf.createWith cnf)
      // as the library entry: a third of the random A keeps the density inside the plane law's window
      { variant "conditional-ot-flow" "ot-flow" 2 0.3 (OtFlow.createWith otFlow) with
          Random = fun g t d ->
              let b = OtFlow.createWith otFlow g t d |> Entry.perturb g 0.3
              { b with Params = b.Params.With [ "a", b.Params["a"] * (1.0 / 3.0) ] } } ]

let private images =
    let shapes = [ [| 2; 2; 2 |]; [| 3; 2; 2 |]; [| 2; 3; 3 |]; [| 4; 2; 2 |] ]
    let rows (b: Bijector) = ImageRows.ofImages b.Event b.Event b
    let channelCoupling g t d =
        rows (ChannelCoupling.create g t { Image = ImageRows.shapeFor shapes d; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; ContextDim = 3 })
    let glowConfig (dim: int) =
        { Glow.Config.defaults (dim / 16) 4 4 with StepsPerLevel = 1; Hidden = 4; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; ContextDim = 3 }
    [ variant "conditional-channel-coupling" "channel-coupling" 3 0.3 channelCoupling
      // as the library entry: context maps at a third of the perturbation keep a composition of two
      // Glows within the round trip's tolerance
      { variant "conditional-glow" "glow" 3 0.3 (fun g t d -> Glow.asRows g t (glowConfig d)) with
          Random = fun g t d ->
              let b = Glow.asRows g t (glowConfig d) |> Entry.perturb g 0.3
              { b with Params = b.Params.With [ for n in b.Params.Names do if n.Contains "context." then yield n, b.Params[n] * (1.0 / 3.0) ] } } ]

/// Every variant.
let all : Fixture list = couplings @ splineCouplings @ autoregressive @ conditionalResidualAndContinuous @ images
