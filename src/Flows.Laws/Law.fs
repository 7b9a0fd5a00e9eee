namespace Flows.Laws

/// One law a bijector must obey. Direction as in Flows: forward maps base → data, inverse data → base.
[<RequireQualifiedAccess>]
type Law =
    /// inverse(forward(x)) = x.
    | InverseUndoesForward
    /// forward(inverse(y)) = y.
    | ForwardUndoesInverse
    /// The forward log-det is log|det| of the autodiff Jacobian of forward (MathNet LU).
    | ForwardLogDet
    /// The inverse log-det is log|det| of the autodiff Jacobian of inverse.
    | InverseLogDet
    /// The inverse log-det at forward(x) is minus the forward log-det at x.
    | LogDetsCancel
    /// A composition of two instances maps like one after the other and sums their log-dets.
    | Composition
    /// A batch gives the same rows and log-dets as the rows one by one.
    | BatchConsistency
    /// Float32 parameters and inputs give the float64 outputs and log-dets, to float32 accuracy.
    | Float32MatchesFloat64
    /// Forward at ±30 and inverse near the domain's edge stay finite.
    | FiniteAtExtremes
    /// Inputs outside a bounded domain raise an ArgumentException naming the bijector.
    | DomainErrors
    /// Every parameter gets a finite gradient, non-zero exactly when nudging it moves the density.
    | ParameterGradients
    /// Sampling with log-densities in one pass equals sampling, then scoring.
    | SampleAndLogProb
    /// On the plane, a standard normal pushed through the bijector integrates to one (quadrature).
    | Normalisation
    /// Rebuilt by its codec from its name and settings, with its tensors put back, it maps alike.
    | SaveLoad

/// The laws by name.
[<RequireQualifiedAccess>]
module Law =

    /// Every law, in the order a report lists them.
    let all =
        [ Law.InverseUndoesForward
          Law.ForwardUndoesInverse
          Law.ForwardLogDet
          Law.InverseLogDet
          Law.LogDetsCancel
          Law.Composition
          Law.BatchConsistency
          Law.Float32MatchesFloat64
          Law.FiniteAtExtremes
          Law.DomainErrors
          Law.ParameterGradients
          Law.SampleAndLogProb
          Law.Normalisation
          Law.SaveLoad ]

    /// The law's short name, as reports print it.
    let name (law: Law) =
        match law with
        | Law.InverseUndoesForward -> "inverse-undoes-forward"
        | Law.ForwardUndoesInverse -> "forward-undoes-inverse"
        | Law.ForwardLogDet -> "forward-log-det"
        | Law.InverseLogDet -> "inverse-log-det"
        | Law.LogDetsCancel -> "log-dets-cancel"
        | Law.Composition -> "composition"
        | Law.BatchConsistency -> "batch-consistency"
        | Law.Float32MatchesFloat64 -> "float32-matches-float64"
        | Law.FiniteAtExtremes -> "finite-at-extremes"
        | Law.DomainErrors -> "domain-errors"
        | Law.ParameterGradients -> "parameter-gradients"
        | Law.SampleAndLogProb -> "sample-and-log-prob"
        | Law.Normalisation -> "normalisation"
        | Law.SaveLoad -> "save-load"
