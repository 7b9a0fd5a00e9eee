namespace Flows.Transformers

open Flows
open Flows.Tensors

/// An element-wise monotone map of each feature driven by raw parameters from a conditioner: what a
/// spline coupling or spline MAF layer needs of its spline. Zero raw parameters give the identity,
/// so a conditioner whose last layer starts at zero starts the layer as the identity.
[<NoEquality; NoComparison>]
type Transformer =
    { /// The name used in bijector names and settings ("rq", "linear", "quadratic", "cubic").
      Name: string
      /// Raw parameters per transformed feature.
      ParameterCount: int
      /// The map acts on [−Bound, Bound] and is the identity outside.
      Bound: float
      /// y = f(x) for x [..., d] and raw parameters [..., d, ParameterCount]; returns y and log dy/dx [..., d].
      Forward: Tensor -> Tensor -> Tensor * Tensor
      /// x = f⁻¹(y) and log dx/dy [..., d], with the same raw parameters.
      Inverse: Tensor -> Tensor -> Tensor * Tensor
      /// The x and y knots [..., d, K+1] that the raw parameters [..., d, ParameterCount] give.
      Knots: Tensor -> Tensor * Tensor
      /// How `Inverse` is computed: closed form or a root search to a tolerance.
      InverseKind: InverseKind }
