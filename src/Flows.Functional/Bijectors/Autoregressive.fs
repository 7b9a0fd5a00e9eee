/// Masked autoregressive flow (MAF, Papamakarios et al. 2017) with an affine transformer on a MADE
/// conditioner, and the inverse autoregressive flow (IAF, Kingma et al. 2016) as the inverted MAF:
///   forward (base → data)  x_d = z_d·exp(α_d(x_<d)) + μ_d(x_<d), D sequential passes
///   inverse (data → base)  z = (x − μ(x))·exp(−α(x)), one pass (fast density)
///   log|det J_forward| = Σ_d α_d, with α = c·(2/π)·atan(s/c) so |α| < c and exp cannot overflow.
/// "<d" is the MADE order saved in the settings; the IAF swaps the two directions (fast sampling).
module Flows.Bijectors.Autoregressive

open Flows
open Flows.Nn
open Flows.Tensors

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
    let made, net =
        Made.create gen dtype
            { Dim = spec.Dim; Hidden = spec.Hidden; Multiplier = 2; Order = spec.Order; ContextDim = spec.ContextDim
              ResidualBlocks = spec.ResidualBlocks; Activation = spec.Activation }
    let dim = spec.Dim
    let clamp = spec.Clamp
    let parameters (p: Params) (ctx: Context) (x: Tensor) =
        let h = (Made.apply made p ctx.Condition x).reshape [| x.shape[0]; dim; 2 |]
        let shift = h.narrow(2, 0, 1).reshape [| x.shape[0]; dim |]
        let raw = h.narrow(2, 1, 1).reshape [| x.shape[0]; dim |]
        shift, (raw / clamp).atan() * (clamp * 2.0 / System.Math.PI)
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        // pass t fixes the dimensions of degree t; the last pass saw every earlier one final
        let mutable x = z.zerosLike()
        let mutable logDet = Bijector.zeroLogDet z
        for _ in 1 .. dim do
            let shift, logScale = parameters p ctx x
            x <- Tensor.affineMap(z, shift, logScale, false)
            logDet <- logScale.sum(1)
        x, logDet
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let shift, logScale = parameters p ctx x
        Tensor.affineMap(x, shift, logScale, true), -(logScale.sum(1))
    let settings = Settings.ofList (("clamp", Setting.Float clamp) :: Made.settings made)
    Bijector.create "maf" settings [| dim |] (net.Prefixed "made")
        (fun p ctx z -> forward (p.Scope "made") ctx z) (fun p ctx x -> inverse (p.Scope "made") ctx x)

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
