namespace Flows.Continuous

open System
open Flows
open Flows.Tensors

/// The end time of a CNF's training solves.
[<RequireQualifiedAccess>]
type Horizon =
    /// Every solve runs over [0, T].
    | Fixed of endTime: float
    /// STEER (Ghosh et al. 2020, "STEER: Simple Temporal Regularization For Neural ODEs"; document
    /// 002): each training solve runs over [0, τ] with τ ~ U(T − b, T + b); evaluation uses T.
    | Steer of endTime: float * halfWidth: float

/// Drawing end times from a horizon.
[<RequireQualifiedAccess>]
module Horizon =

    /// Checks that T is finite and positive and, for STEER, that 0 ≤ b < T (every τ stays positive).
    let validate (horizon: Horizon) =
        let checkEnd (t: float) = Guard.that (nameof horizon) (Double.IsFinite t && t > 0.0) $"the end time must be a finite positive number, got {t}"
        match horizon with
        | Horizon.Fixed t -> checkEnd t
        | Horizon.Steer(t, b) ->
            checkEnd t
            Guard.that (nameof horizon) (b >= 0.0 && b < t) $"STEER's half-width must be in [0, T = {t}), got {b}"

    /// The end time evaluation uses: T.
    let evaluation (horizon: Horizon) =
        match horizon with
        | Horizon.Fixed t
        | Horizon.Steer(t, _) -> t

    /// The end time of one training solve: T for a fixed horizon, a fresh U(T − b, T + b) draw from
    /// `gen` for STEER.
    let draw (gen: Generator) (horizon: Horizon) =
        validate horizon
        match horizon with
        | Horizon.Fixed t -> t
        | Horizon.Steer(t, b) -> gen.uniform([| 1 |], t - b, t + b, Dtype.Float64).toScalar()
