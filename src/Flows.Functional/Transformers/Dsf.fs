/// NAF's deep sigmoidal flow (DSF, Huang et al. 2018, "Neural Autoregressive Flows") as an
/// element-wise transformer. Per feature, with K units,
///   y = σ⁻¹(Σ_j w_j σ(a_j x + b_j)), a = softplus(·) > 0, w = softmax(·),
///   log dy/dx = log Σ_j w_j a_j σ'(u_j) − log S − log(1 − S), all in log space;
/// inverse by bisection on the monotone DSF, then a differentiable Newton step.
namespace Flows.Transformers

open Flows
open Flows.Tensors

/// The DSF parameters of every feature: a > 0 (and log a), log w, b, each [..., d, K].
type Dsf =
    { Slope: Tensor
      LogSlope: Tensor
      LogWeight: Tensor
      Shift: Tensor }

/// Functions of the DSF transformer, element-wise in the features.
[<RequireQualifiedAccess>]
module Dsf =

    /// DSF parameters from raw conditioner outputs [..., d, 3K] (slopes, weights, shifts); a raw 0
    /// gives slope 1 and the fixed `offsets` as shifts, so the units start apart.
    let ofRaw (units: int) (offsets: Tensor) (raw: Tensor) =
        let rawSlope = raw.narrow(-1, 0, units) + log (System.Math.E - 1.0)
        { Slope = rawSlope.softplus()
          LogSlope = rawSlope.softplus().log()
          LogWeight = raw.narrow(-1, units, units).logsoftmax(-1)
          Shift = raw.narrow(-1, 2 * units, units) + offsets }

    /// y = log S − log(1 − S) for x [..., d] and log dy/dx, with S and 1 − S both as log-sum-exps of
    /// log σ terms, so neither saturates to 0 or 1 (no clamping needed).
    let apply (t: Dsf) (x: Tensor) =
        let u = t.Slope * x.unsqueeze(-1) + t.Shift
        let logUp, logDown = u.logsigmoid(), (-u).logsigmoid()
        let logS = (t.LogWeight + logUp).logsumexp(-1)
        let logOneMinusS = (t.LogWeight + logDown).logsumexp(-1)
        let logDerivative = (t.LogWeight + t.LogSlope + logUp + logDown).logsumexp(-1) - logS - logOneMinusS
        logS - logOneMinusS, logDerivative

    /// The DSF transformer with K units, named "sigmoid"; raw 0 spreads the shifts over [−2, 2]. The
    /// logit of the mixture lies between the smallest and the largest a_j x + b_j, so
    /// [min_j (y − b_j)/a_j, max_j (y − b_j)/a_j] brackets the inverse.
    let transformer (units: int) : Transformer =
        Guard.positive (nameof units) units
        let offsets =
            Constant.ofArray(Array.init units (fun j -> if units = 1 then 0.0 else -2.0 + 4.0 * float j / float (units - 1)), [| units |])
        let dsf (raw: Tensor) = ofRaw units (offsets.Like raw) raw
        let inverse (y: Tensor) (raw: Tensor) =
            let c = dsf (raw.noDiff())
            let ends = (y.noDiff().unsqueeze(-1) - c.Shift) / c.Slope
            Transformer.solve (apply c) (apply (dsf raw)) (ends.min(-1), ends.max(-1)) y
        { Transformer.stateless "sigmoid" (3 * units) (fun x raw -> apply (dsf raw) x) inverse with
            InverseKind = InverseKind.Iterative Transformer.tolerance }
