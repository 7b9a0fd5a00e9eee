namespace Flows.Transformers

open Flows
open Flows.Tensors

/// An element-wise monotone map of each feature, driven by raw parameters that a conditioner
/// computes (FlowJAX's scalar bijection, zuko's univariate transform): what the generic coupling
/// and masked-autoregressive layers need of it. Zero raw parameters give the identity for the
/// library's transformers, so a conditioner whose last layer starts at zero starts the layer as one.
[<NoEquality; NoComparison>]
type Transformer =
    { /// The name used in bijector names and settings ("affine", "rq", "sigmoid", ...).
      Name: string
      /// Raw parameters per transformed feature.
      ParameterCount: int
      /// The transformer's own learnable tensors, shared by every feature (UMNN's integrand network);
      /// a layer keeps them under these names beside its conditioner's. Empty for most.
      Params: Params
      /// y = f(x) for x [..., d] and raw parameters [..., d, ParameterCount], reading its own tensors
      /// from the layer's parameters; returns y and log dy/dx [..., d].
      Forward: Params -> Tensor -> Tensor -> Tensor * Tensor
      /// x = f⁻¹(y) and log dx/dy [..., d], with the same raw parameters.
      Inverse: Params -> Tensor -> Tensor -> Tensor * Tensor
      /// How `Inverse` is computed: closed form or a root search to a tolerance.
      InverseKind: InverseKind
      /// Standard deviation of the noise a layer adds to its conditioner's zero output layer: SOS's
      /// squares would otherwise start equal and get equal gradients forever. 0 for most.
      InitialNoise: float }

/// Functions of transformers.
[<RequireQualifiedAccess>]
module Transformer =

    /// Width of the bisection bracket at which the iterative inverses without a closed form (NAF's
    /// sigmoid flow, SOS, UMNN) stop, before their Newton step.
    let tolerance = 1e-10

    /// A transformer without learnable tensors of its own, exactly invertible.
    let stateless (name: string) (count: int) (forward: Tensor -> Tensor -> Tensor * Tensor) (inverse: Tensor -> Tensor -> Tensor * Tensor) =
        { Name = name
          ParameterCount = count
          Params = Params.empty
          Forward = fun _ x raw -> forward x raw
          Inverse = fun _ y raw -> inverse y raw
          InverseKind = InverseKind.Exact
          InitialNoise = 0.0 }

    /// y = f(x) with the transformer's own (initial) tensors.
    let forward (t: Transformer) (x: Tensor) (raw: Tensor) = t.Forward t.Params x raw

    /// x = f⁻¹(y) with the transformer's own (initial) tensors.
    let inverse (t: Transformer) (y: Tensor) (raw: Tensor) = t.Inverse t.Params y raw

    /// x = f⁻¹(y) and log dx/dy = −log f'(x) for an increasing map given with its log-derivative,
    /// x ↦ (f x, log f'(x)): bisection inside `bracket` on `constant` (the map on detached
    /// parameters), then one Newton step on `map` that carries the implicit-function gradient.
    let solve (constant: Tensor -> Tensor * Tensor) (map: Tensor -> Tensor * Tensor) (bracket: Tensor * Tensor) (y: Tensor) =
        let x = RootFind.solveIncreasing constant map y bracket tolerance
        x, -(snd (map x))

    /// The conditioner's parameters with N(0, noise²) added to its output layer (the last weight and
    /// bias, as every conditioner and MADE orders them), when the transformer asks for it.
    let perturbOutput (gen: Generator) (dtype: Dtype) (t: Transformer) (net: Params) =
        if t.InitialNoise = 0.0 then net
        else net.With [ for name in net.Names[net.Count - 2 ..] -> name, net[name] + gen.normal(net[name].shape, 0.0, t.InitialNoise, dtype) ]

    /// The same transformer with its two directions swapped (MAF's affine map: the density side
    /// z = (x − μ)·exp(−α) is the one pass).
    let invert (t: Transformer) =
        { t with Name = t.Name + "-inverted"; Forward = t.Inverse; Inverse = t.Forward }
