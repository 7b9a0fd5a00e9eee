namespace Flows.Laws

open Flows
open Flows.Tensors

/// The law suite for any bijector: `Laws.check options bijector` returns one report per law.
/// Checks run in float64 (the bijector's tensors are cast), so an error is the bijector's, not rounding.
[<RequireQualifiedAccess>]
module Laws =

    let private checkOf (law: Law) : LawOptions -> LawSample -> Bijector -> Finding option =
        match law with
        | Law.InverseUndoesForward -> Checks.inverseUndoesForward
        | Law.ForwardUndoesInverse -> Checks.forwardUndoesInverse
        | Law.ForwardLogDet -> Checks.forwardLogDet
        | Law.InverseLogDet -> Checks.inverseLogDet
        | Law.LogDetsCancel -> Checks.logDetsCancel
        | Law.Composition -> Checks.composition
        | Law.BatchConsistency -> Checks.batchConsistency
        | Law.Float32MatchesFloat64 -> Checks.float32MatchesFloat64
        | Law.FiniteAtExtremes -> Checks.finiteAtExtremes
        | Law.DomainErrors -> Checks.domainErrors
        | Law.ParameterGradients -> Checks.parameterGradients
        | Law.SampleAndLogProb -> Checks.sampleAndLogProb
        | Law.Normalisation -> Checks.normalisation
        | Law.SaveLoad -> Checks.saveLoad

    /// The bijector with its parameters and buffers in float64.
    let toFloat64 (bijector: Bijector) =
        let double (t: Tensor) = t.cast Dtype.Float64
        { bijector with Params = bijector.Params.Map double; Buffers = bijector.Buffers.Map double }

    /// The batches `options` asks for, for rows of the bijector's size.
    let samples (options: LawOptions) (bijector: Bijector) =
        Guard.positive (nameof options) options.Cases
        Guard.positive (nameof options) options.MaxBatch
        let dim = Array.fold (*) 1 bijector.Event
        [ for k in 0 .. options.Cases - 1 -> LawSample.draw options dim (options.Seed + 7919 * k) ]

    /// One law on the given batches: it holds when it holds on every batch; an exception the
    /// bijector raises is a failure whose detail is the exception's message.
    let runOn (law: Law) (options: LawOptions) (samples: LawSample list) (bijector: Bijector) : LawReport =
        let b = toFloat64 bijector
        let findings =
            samples
            |> List.map (fun s ->
                try checkOf law options s b
                with e -> Some(Finding.failure (Finding.row 0 s.X) $"{e.GetType().Name}: {e.Message}"))
        match List.choose id findings with
        | [] -> { Law = law; Verdict = Verdict.NotApplicable; WorstError = 0.0; Input = [||]; Detail = "does not apply to this bijector" }
        | applicable ->
            let worst = Finding.worst applicable
            { Law = law
              Verdict = (if worst.Excess <= 1.0 then Verdict.Holds else Verdict.Fails)
              WorstError = worst.Error
              Input = worst.Input
              Detail = worst.Detail }

    /// One law on the batches `options` asks for.
    let run (law: Law) (options: LawOptions) (bijector: Bijector) =
        runOn law options (samples options bijector) bijector

    /// Every law of `options.Laws`, one report each, in that order.
    let check (options: LawOptions) (bijector: Bijector) : LawReport list =
        let batches = samples options bijector
        options.Laws |> List.map (fun law -> runOn law options batches bijector)

    /// Checks every law and throws a LawException listing the failed ones: a test in one line.
    let assertAll (options: LawOptions) (bijector: Bijector) =
        check options bijector |> LawReport.assertAll bijector.Name
