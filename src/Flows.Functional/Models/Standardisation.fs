namespace Flows.Data

open Flows
open Flows.Tensors

/// Column-wise standardisation z = (x − Mean) / Scale, kept with a model so that its flow sees
/// standardised rows while callers pass raw ones: log p(x) = log q(z) − Σ log Scale.
type Standardisation =
    { Mean: float[]
      Scale: float[] }

/// Fitting and applying standardisations.
[<RequireQualifiedAccess>]
module Standardisation =

    /// Column means and population standard deviations of rows [n; d] (computed in float64);
    /// a constant column gets scale 1 so that it is only shifted.
    let ofRows (x: Tensor) =
        Guard.that (nameof x) (x.dim = 2 && x.shape[0] > 0) $"expected a non-empty [n; d] tensor, got shape {Shape.show x.shape}"
        let x64 = x.cast Dtype.Float64
        let std = x64.std(0, unbiased = false).toArray64()
        { Mean = x64.mean(0).toArray64()
          Scale = std |> Array.map (fun s -> if s > 0.0 && System.Double.IsFinite s then s else 1.0) }

    let private row (values: float[]) (like: Tensor) = Tensor.ofArray(values, [| 1; values.Length |]).cast(like.dtype).moveTo like.device

    /// Raw rows to standardised ones.
    let apply (s: Standardisation) (x: Tensor) = (x - row s.Mean x) / row s.Scale x

    /// Standardised rows back to raw ones.
    let undo (s: Standardisation) (z: Tensor) = z * row s.Scale z + row s.Mean z

    /// log|det| of `undo` (the same for every row): Σ log Scale.
    let logScale (s: Standardisation) = s.Scale |> Array.sumBy log
