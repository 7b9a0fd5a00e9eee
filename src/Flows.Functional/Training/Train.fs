namespace Flows.Training

open System
open System.Diagnostics
open Flows
open Flows.Tensors
open Flows.Tensors.Backend

/// The training loop: `GradientStep.run` folded over batches, with validation and early stopping
/// (`EarlyStopping`), progress reports, and a stop after repeated non-finite steps that keeps the last
/// good parameters.
[<RequireQualifiedAccess>]
module Train =

    /// The flow and report of an outcome.
    let result (outcome: FitOutcome) =
        match outcome with
        | Converged(flow, report)
        | Diverged(flow, report) -> flow, report

    /// Fits `flow` to `objective`.
    let fit (options: TrainOptions) (objective: Objective) (flow: Flow) : FitOutcome =
        Guard.positive (nameof options.Steps) options.Steps
        Guard.positive (nameof options.BatchSize) options.BatchSize
        Guard.positiveFloat (nameof options.LearningRate) options.LearningRate
        let clock = Stopwatch.StartNew()
        let collective = options.Collective
        let distributed = collective.Size > 1
        // several ranks draw noise (reverse-KL samples, probes, sampler rows) of their own
        let seed = if distributed then Counter.bits options.Seed (uint64 collective.Rank) else options.Seed
        let gen = Generator seed
        let source =
            match objective with
            | Objective.ForwardKl source
            | Objective.BatchLoss(source, _) -> Some source
            | Objective.ReverseKl _ -> None
        // each call: the batch and this rank's share of the step's mean (1 for one process)
        let next : unit -> Tensor * float =
            match source with
            | Some(DataSource.Sharded(rows, context, total)) ->
                let draw = Batches.ofShard options.Seed collective options.BatchSize rows context total
                fun () -> let batch, globalRows = draw () in batch, float batch.shape[0] / float globalRows
            | Some((DataSource.Dataset _ | DataSource.Conditional _) as whole) ->
                Guard.that (nameof objective) (not distributed)
                    $"{collective.Size} ranks train together: pass each rank's rows as DataSource.Sharded"
                let draw = Batches.ofSource seed gen options.BatchSize whole
                fun () -> draw (), 1.0
            | Some sampler ->
                let draw = Batches.ofSource seed gen options.BatchSize sampler
                fun () -> draw (), 1.0 / float collective.Size
            | None -> fun () -> Tensor.zeros [| 0 |], 1.0 / float collective.Size
        let contextDim =
            match source with
            | Some(DataSource.Conditional(data, context)) ->
                Guard.that (nameof objective) (context.dim = 2 && context.shape[0] = data.shape[0])
                    $"the context needs one row per data row: data {Shape.show data.shape}, context {Shape.show context.shape}"
                context.shape[1]
            | Some(DataSource.Sharded(rows, Some context, _)) ->
                Guard.that (nameof objective) (context.dim = 2 && context.shape[0] = rows.shape[0])
                    $"the context needs one row per data row: rows {Shape.show rows.shape}, context {Shape.show context.shape}"
                context.shape[1]
            | _ -> 0
        // ranks that each initialised data-dependent layers on their own rows would train different models
        let observing = flow.Layers |> List.filter (fun b -> b.Observe.IsSome) |> List.map _.Name |> String.concat "; "
        Guard.that (nameof flow) (not distributed || observing = "")
            $"layers that learn from the batches they see ({observing}) cannot train on several ranks"
        let flow = if distributed then DataParallel.broadcastParameters collective flow else flow
        let loss (p: Params) (batch: Tensor) (flow: Flow) =
            match objective with
            | Objective.ForwardKl _ ->
                let x, ctx = Batches.splitContext contextDim Context.training batch
                Objectives.negativeLogLikelihood p ctx x flow
            | Objective.ReverseKl target -> Objectives.reverseKl p Context.training gen options.BatchSize target flow
            | Objective.BatchLoss(_, batchLoss) -> batchLoss p gen batch flow
        let askedToStop () = options.ShouldStop |> Option.exists (fun shouldStop -> shouldStop ())
        let step = GradientStep.run options loss contextDim source.IsSome askedToStop
        let losses = Collections.Generic.List<float>()
        let validations = Collections.Generic.List<int * float>()
        let mutable state = GradientStep.start flow
        let mutable history = EarlyStopping.start
        let mutable stop = None
        let mutable cancelled = false
        let mutable t = 0
        // one process stops before a step; several agree on it through the step's reduction
        while t < options.Steps && stop.IsNone && not cancelled && not (not distributed && askedToStop ()) do
            let after, measured = step t (next ()) state
            // nothing but the replaced state held its optimiser moments
            Memory.recycle (Seq.concat [ after.Optimiser.First; after.Optimiser.Second; after.Parameters.Values ])
                (Seq.append state.Optimiser.First state.Optimiser.Second)
            state <- after
            cancelled <- measured.StopAsked
            losses.Add measured.Loss
            if not measured.Finite && state.Bad >= options.MaxBadSteps then
                stop <- Some(StopReason.Diverged(t + 1), $"diverged at step {t + 1}: {state.Bad} consecutive steps had a non-finite loss or gradient (last loss {measured.Loss}, gradient norm {measured.Norm}); kept the last parameters with a finite loss")
            let validation =
                match options.Validation with
                | Some v when stop.IsNone && ((t + 1) % options.ValidateEvery = 0 || t + 1 = options.Steps) ->
                    let nll = DataParallel.validationNll collective contextDim state.Flow v
                    validations.Add((t + 1, nll))
                    history <- EarlyStopping.record (t + 1) state.Flow nll history
                    stop <- EarlyStopping.verdict options.Patience (t + 1) history
                    Some nll
                | _ -> None
            match options.Progress with
            | Some report when (t + 1) % options.ReportEvery = 0 || t + 1 = options.Steps ->
                report { Step = t + 1; TotalSteps = options.Steps; Loss = measured.Loss; Validation = validation; Seconds = clock.Elapsed.TotalSeconds }
            | _ -> ()
            t <- t + 1
        let stopReason, message =
            match stop with
            | Some(reason, message) -> reason, message
            | None when t < options.Steps -> StopReason.Cancelled t, $"stopped by the caller after {t} steps"
            | None -> StopReason.Completed, $"ran {t} steps"
        let final =
            match history.Best, stopReason with
            | Some(bestFlow, _, _), _ -> bestFlow
            | None, StopReason.Diverged _ -> state.LastFinite
            | None, _ -> state.Flow
        let report =
            { StepsRun = t
              Losses = losses.ToArray()
              Validations = validations.ToArray()
              SkippedSteps = state.Skipped
              StoppedEarly = stopReason <> StopReason.Completed
              Stop = stopReason
              BestStep = EarlyStopping.bestStep history
              Message = message
              Seconds = clock.Elapsed.TotalSeconds }
        match stopReason with
        | StopReason.Diverged _ -> Diverged(final, report)
        | _ -> Converged(final, report)
