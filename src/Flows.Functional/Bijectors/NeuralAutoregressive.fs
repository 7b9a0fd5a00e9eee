/// Neural autoregressive flow (NAF, Huang et al. 2018, "Neural Autoregressive Flows") with the deep
/// sigmoidal flow (DSF) transformer on a MADE conditioner. Per feature, with K units,
///   inverse (data → base)  z = σ⁻¹(Σ_j w_j σ(a_j x + b_j)), a = softplus(·) > 0, w = softmax(·),
///   one pass (fast density); log dz/dx = log Σ_j w_j a_j σ'(u_j) − log S − log(1 − S), all in log space
///   forward (base → data)  x by bisection on the monotone DSF, then a differentiable Newton step,
///   D sequential passes (sampling), to `AutoregressiveInverse.tolerance`.
module Flows.Bijectors.NeuralAutoregressive

open Flows
open Flows.Nn
open Flows.Tensors

/// A NAF layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Sigmoid units K of each feature's DSF.
      Units: int
      ContextDim: int }

/// The DSF parameters of every feature: a > 0 (and log a), log w, b, each [n; D; K].
type Dsf =
    { Slope: Tensor
      LogSlope: Tensor
      LogWeight: Tensor
      Shift: Tensor }

/// Functions of the DSF transformer, element-wise in the features.
[<RequireQualifiedAccess>]
module Dsf =

    /// DSF parameters from raw conditioner outputs [n; D; 3K] (slopes, weights, shifts); a raw 0
    /// gives slope 1 and the fixed `offsets` as shifts, so the units start apart.
    let ofRaw (units: int) (offsets: Tensor) (raw: Tensor) =
        let rawSlope = raw.narrow(2, 0, units) + log (System.Math.E - 1.0)
        { Slope = rawSlope.softplus()
          LogSlope = rawSlope.softplus().log()
          LogWeight = raw.narrow(2, units, units).logsoftmax(2)
          Shift = raw.narrow(2, 2 * units, units) + offsets }

    /// The detached parameters, for root finding on constants.
    let noDiff (t: Dsf) =
        { Slope = t.Slope.noDiff(); LogSlope = t.LogSlope.noDiff(); LogWeight = t.LogWeight.noDiff(); Shift = t.Shift.noDiff() }

    /// z = log S − log(1 − S) for x [n; D] and log dz/dx, with S and 1 − S both as log-sum-exps of
    /// log σ terms, so neither saturates to 0 or 1 (no clamping needed).
    let apply (t: Dsf) (x: Tensor) =
        let u = t.Slope * x.unsqueeze(2) + t.Shift
        let logUp, logDown = u.logsigmoid(), (-u).logsigmoid()
        let logS = (t.LogWeight + logUp).logsumexp(2)
        let logOneMinusS = (t.LogWeight + logDown).logsumexp(2)
        let logDerivative = (t.LogWeight + t.LogSlope + logUp + logDown).logsumexp(2) - logS - logOneMinusS
        logS - logOneMinusS, logDerivative

    /// The x with DSF(x) = z: the logit of the mixture lies between the smallest and the largest
    /// a_j x + b_j, so [min_j (z − b_j)/a_j, max_j (z − b_j)/a_j] brackets the root.
    let solve (t: Dsf) (z: Tensor) =
        let c = noDiff t
        let ends = (z.noDiff().unsqueeze(2) - c.Shift) / c.Slope
        RootFind.solveIncreasing (apply c) (apply t) z (ends.min(2), ends.max(2)) AutoregressiveInverse.tolerance

/// The NAF layer; the MADE's last layer starts at zero, so every unit starts with slope 1 and
/// weight 1/K, the shifts spread over [−2, 2].
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    Guard.positive (nameof spec.Units) spec.Units
    let units = spec.Units
    let made, net =
        Made.create gen dtype
            { Dim = spec.Dim; Hidden = spec.Hidden; Multiplier = 3 * units; Order = spec.Order; ContextDim = spec.ContextDim
              ResidualBlocks = 0; Activation = spec.Activation }
    let dim = spec.Dim
    let offsets =
        Constant.ofArray(Array.init units (fun j -> if units = 1 then 0.0 else -2.0 + 4.0 * float j / float (units - 1)), [| units |])
    let parameters (p: Params) (ctx: Context) (x: Tensor) =
        (Made.apply made p ctx.Condition x).reshape [| x.shape[0]; dim; 3 * units |] |> Dsf.ofRaw units (offsets.Like x)
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        // pass t fixes the dimensions of degree t; the last pass saw every earlier one final
        let mutable x = z.zerosLike()
        let mutable logDet = Bijector.zeroLogDet z
        for _ in 1 .. dim do
            let t = parameters p ctx x
            x <- Dsf.solve t z
            logDet <- -((snd (Dsf.apply t x)).sum(1))
        x, logDet
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let z, logDerivative = Dsf.apply (parameters p ctx x) x
        z, logDerivative.sum(1)
    let settings = Settings.ofList (("units", Setting.Int units) :: Made.settings made)
    Bijector.create "naf" settings [| dim |] (net.Prefixed "made")
        (fun p ctx z -> forward (p.Scope "made") ctx z) (fun p ctx x -> inverse (p.Scope "made") ctx x)

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
        InverseKind = InverseKind.Iterative AutoregressiveInverse.tolerance }

let private spec (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8 ]; Order = order; Activation = Activation.Tanh; Units = 4; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "naf" (spec Order.Reversed)
