namespace Flows.Training

open System
open System.Diagnostics
open System.Threading
open Flows
open Flows.Tensors
open Flows.Tensors.Backend

/// Where training rows come from.
[<RequireQualifiedAccess>]
type DataSource =
    /// A fixed data set [n; ...]: shuffled mini-batches, reshuffled every epoch (seeded).
    | Dataset of Tensor
    /// Fresh rows every step from a seeded sampler (toy targets with exact samplers).
    | Sampler of (Generator -> int -> Tensor)
    /// Rows [n; d] with their context rows [n; c] (conditional flows), batched together.
    | Conditional of data: Tensor * context: Tensor
    /// This rank's shard of a table of `total` rows spread over the ranks of `TrainOptions.Collective`:
    /// global rows rank, rank + size, rank + 2·size, … (with their context rows, if any). Every rank
    /// draws the same global batches and trains on the rows it holds, so N ranks follow the run of one
    /// process with the whole table and the same batch size and seed.
    | Sharded of rows: Tensor * context: Tensor option * total: int

/// What training minimises.
[<RequireQualifiedAccess>]
type Objective =
    /// Forward KL: the negative log-likelihood of data.
    | ForwardKl of DataSource
    /// Reverse KL against an unnormalised log-density, from the flow's own samples.
    | ReverseKl of LogDensity
    /// Any other differentiable loss of a data batch, given the parameters, a generator for its own
    /// noise, the batch and the flow (flow matching's regression); validation still scores NLL.
    | BatchLoss of DataSource * loss: (Params -> Generator -> Tensor -> Flow -> Tensor)

/// A progress report, sent every `ReportEvery` steps.
type Progress =
    { Step: int
      /// The most steps this run will take (it may stop earlier).
      TotalSteps: int
      Loss: float
      Validation: float option
      Seconds: float }

/// Options of `Train.fit`; `TrainOptions.defaults` gives the usual values.
type TrainOptions =
    { Steps: int
      BatchSize: int
      LearningRate: float
      Optimiser: Optimiser
      Schedule: Schedule
      ClipNorm: float option
      Seed: uint64
      /// Held-out rows scored (mean NLL) every `ValidateEvery` steps; the best parameters are kept.
      /// For a conditional data set, the rows followed by their context columns.
      Validation: Tensor option
      ValidateEvery: int
      /// Stop when validation has not improved for this many validations.
      Patience: int option
      /// Stop with a report after this many consecutive non-finite steps.
      MaxBadSteps: int
      ReportEvery: int
      Progress: (Progress -> unit) option
      /// Asked before every step; true stops training there with the current (last good) flow.
      ShouldStop: (unit -> bool) option
      /// The processes training together (data parallelism): gradients, losses and validation sums
      /// are summed over them every step, and the parameters start as rank 0's.
      Collective: ICollective }

/// Why training stopped.
[<RequireQualifiedAccess>]
type StopReason =
    /// Every step ran.
    | Completed
    /// Validation did not improve for the patience window; the best parameters were at `bestStep`.
    | EarlyStopped of atStep: int * bestStep: int
    /// Validation stayed far above its best (or non-finite) for the patience window.
    | Exploded of atStep: int * bestStep: int
    /// Repeated non-finite losses or gradients; the last parameters with a finite loss are kept.
    | Diverged of atStep: int
    /// The caller asked to stop (cancellation).
    | Cancelled of atStep: int

/// The record of a training run.
type Report =
    { StepsRun: int
      Losses: float[]
      Validations: (int * float)[]
      SkippedSteps: int
      StoppedEarly: bool
      Stop: StopReason
      /// The step whose parameters were returned, when validation chose them.
      BestStep: int option
      Message: string
      Seconds: float }

/// How a fit ended: both carry a usable flow.
type FitOutcome =
    | Converged of Flow * Report
    /// Training kept producing non-finite losses or gradients; the flow is the last good one.
    | Diverged of lastGood: Flow * Report

/// Defaults and helpers for options and outcomes.
[<RequireQualifiedAccess>]
module TrainOptions =
    /// 1000 steps of Adam at 1e-3, batch 256, no clipping, seed 0.
    let defaults =
        { Steps = 1000
          BatchSize = 256
          LearningRate = 1e-3
          Optimiser = Optimiser.adam
          Schedule = Schedule.Constant
          ClipNorm = None
          Seed = 0UL
          Validation = None
          ValidateEvery = 100
          Patience = None
          MaxBadSteps = 20
          ReportEvery = 100
          Progress = None
          ShouldStop = None
          Collective = Collective.single }

/// The training loop: mini-batches or a sampler, validation and early stopping, and a guard that
/// skips non-finite steps and stops after repeated ones, keeping the last good parameters.
[<RequireQualifiedAccess>]
module Train =

    /// The flow and report of an outcome.
    let result (outcome: FitOutcome) =
        match outcome with
        | Converged(flow, report)
        | Diverged(flow, report) -> flow, report

    /// The batch-drawing function of a source: a sampler's draws (each step from its own generator),
    /// or a data set reshuffled by `gen` every epoch and served `batchSize` rows at a time.
    let rec batches (seed: uint64) (gen: Generator) (batchSize: int) (source: DataSource) : unit -> Tensor =
        match source with
        | DataSource.Sampler draw ->
            // Step k draws from its own generator, so the batches do not depend on timing; the next
            // batch is drawn on the other core while this step trains.
            let drawAt (step: int) = draw (Generator(Counter.bits seed (uint64 step))) batchSize
            let mutable step = 0
            let mutable pending = Tasks.Task.Run(fun () -> drawAt 0)
            fun () ->
                let batch = pending.Result
                step <- step + 1
                let next = step
                pending <- Tasks.Task.Run(fun () -> drawAt next)
                batch
        | DataSource.Conditional(data, context) -> batches seed gen batchSize (DataSource.Dataset(Tensor.cat([| data; context |], 1)))
        | DataSource.Sharded _ -> invalidArg (nameof source) "a sharded source is batched with its collective (Train.shardBatches)"
        | DataSource.Dataset data ->
            let n = data.shape[0]
            Guard.that (nameof source) (n > 0) "the data set is empty"
            let size = min batchSize n
            // the order is drawn on the host and moved once per epoch to where the data lives
            let permutation () = (gen.permutation n).moveTo data.device
            let mutable order = permutation ()
            let mutable at = 0
            fun () ->
                if at + size > n then
                    order <- permutation ()
                    at <- 0
                let index = order.narrow(0, at, size)
                at <- at + size
                let shaped = index.reshape(Array.append [| size |] (Array.create (data.dim - 1) 1)).expand(Array.append [| size |] data.shape[1..])
                data.gather(0, shaped)

    /// The batches of this rank's shard of `total` rows: every rank draws the same permutation of the
    /// global rows each epoch (from a generator of its own, so noise drawn elsewhere cannot make the
    /// ranks disagree), takes the next `batchSize` of them and gathers those it holds. Each call gives
    /// the local rows ([x | c] for a conditional shard; possibly none) and the global batch size.
    let shardBatches (seed: uint64) (collective: ICollective) (batchSize: int) (rows: Tensor) (context: Tensor option) (total: int) : unit -> Tensor * int =
        let data = match context with Some c -> Tensor.cat([| rows; c |], 1) | None -> rows
        let rank, ranks = collective.Rank, collective.Size
        Guard.that (nameof total) (total > 0) "the table is empty"
        let held = (total - rank + ranks - 1) / ranks
        Guard.that (nameof rows) (data.shape[0] = held)
            $"rank {rank} of {ranks} should hold {held} of the {total} rows (every {ranks}th from row {rank}), got {data.shape[0]}"
        let size = min batchSize total
        let gen = Generator(seed ^^^ 0x5A4D0UL)
        let mutable order = gen.permutation(total).toArrayInt()
        let mutable at = 0
        fun () ->
            if at + size > total then
                order <- gen.permutation(total).toArrayInt()
                at <- 0
            let local = [| for i in at .. at + size - 1 do if order[i] % ranks = rank then order[i] / ranks |]
            at <- at + size
            let shape = Array.append [| local.Length |] data.shape[1..]
            let index = Tensor.ofArray(local, device = data.device).reshape(Array.append [| local.Length |] (Array.create (data.dim - 1) 1)).expand shape
            data.gather(0, index), size

    // Rows [x | c] as x and a context holding c; plain rows when there is no context.
    let private splitContext (contextDim: int) (ctx: Context) (rows: Tensor) =
        if contextDim = 0 || rows.numel = 0 then rows, ctx
        else
            let d = rows.shape[1] - contextDim
            rows.narrow(1, 0, d), { ctx with Condition = Some(rows.narrow(1, d, contextDim)) }

    // The mean NLL of held-out rows; under several ranks, of every rank's rows (a rank may hold none).
    let private validationNll (collective: ICollective) (contextDim: int) (flow: Flow) (rows: Tensor) =
        let x, ctx = splitContext contextDim Context.none rows
        if collective.Size = 1 then -((Flow.logProb ctx x flow).mean().toScalar())
        else
            let sums = [| (if rows.shape[0] > 0 then -((Flow.logProb ctx x flow).sum().toScalar()) else 0.0); float rows.shape[0] |]
            collective.SumInPlace sums
            sums[0] / sums[1]

    // Tensors shaped like `like` from consecutive values of `buffer`.
    let private unflatten (like: Tensor[]) (buffer: float[]) =
        let mutable at = 0
        like |> Array.map (fun g ->
            let values = buffer[at .. at + g.numel - 1]
            at <- at + g.numel
            (Tensor.ofArray(values, g.shape).cast g.dtype).moveTo g.device)

    // Under several ranks: every rank's weighted loss and gradients (and whether any rank was asked to
    // stop) summed in one reduction of one float64 buffer.
    let private reduceStep (collective: ICollective) (weight: float) (loss: float) (stopAsked: bool) (grads: Tensor[]) =
        let buffer = Array.concat [ yield! grads |> Array.map (fun g -> g.toArray64() |> Array.map (fun v -> v * weight)); [| loss * weight; (if stopAsked then 1.0 else 0.0) |] ]
        collective.SumInPlace buffer
        let n = buffer.Length - 2
        buffer[n], buffer[n + 1] > 0.0, unflatten grads buffer[.. n - 1]

    // Rank 0's parameters on every rank.
    let private broadcastParameters (collective: ICollective) (flow: Flow) =
        let p = Flow.parameters flow
        let buffer = p.Values |> Array.collect _.toArray64()
        collective.Broadcast buffer
        Flow.withParameters (p.WithValues(unflatten p.Values buffer)) flow

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
                let draw = shardBatches options.Seed collective options.BatchSize rows context total
                fun () -> let batch, globalRows = draw () in batch, float batch.shape[0] / float globalRows
            | Some((DataSource.Dataset _ | DataSource.Conditional _) as whole) ->
                Guard.that (nameof objective) (not distributed)
                    $"{collective.Size} ranks train together: pass each rank's rows as DataSource.Sharded"
                let draw = batches seed gen options.BatchSize whole
                fun () -> draw (), 1.0
            | Some sampler ->
                let draw = batches seed gen options.BatchSize sampler
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
        let flow = if distributed then broadcastParameters collective flow else flow
        let loss (p: Params) (batch: Tensor) (flow: Flow) =
            match objective with
            | Objective.ForwardKl _ ->
                let x, ctx = splitContext contextDim Context.training batch
                Objectives.negativeLogLikelihood p ctx x flow
            | Objective.ReverseKl target -> Objectives.reverseKl p Context.training gen options.BatchSize target flow
            | Objective.BatchLoss(_, batchLoss) -> batchLoss p gen batch flow
        let losses = Collections.Generic.List<float>()
        let validations = Collections.Generic.List<int * float>()
        let mutable flow = flow
        let mutable parameters = Flow.parameters flow
        let mutable state = Optimiser.init parameters
        // the last flow whose loss was finite: where a step that turns out non-finite rolls back to
        let mutable lastFinite = flow
        let mutable best = None
        let mutable sinceBest = 0
        let mutable farAbove = 0
        let mutable bad = 0
        let mutable rolledBack = false
        let mutable skipped = 0
        let mutable stop = None
        let mutable t = 0
        let patience = options.Patience
        // a validation this far above its best counts towards stopping a finite but exploding fit
        let farAboveBest (nll: float) (bestNll: float) = not (Double.IsFinite nll) || nll > bestNll + max 1.0 (0.5 * abs bestNll)
        let bestStep () = best |> Option.map (fun (_, _, step) -> step)
        let mutable cancelled = false
        let askedToStop () = options.ShouldStop |> Option.exists (fun shouldStop -> shouldStop ())
        // one process stops before a step; several agree on it through the step's reduction
        while t < options.Steps && stop.IsNone && not cancelled && not (not distributed && askedToStop ()) do
            let batch, share = next ()
            // Data-dependent layers see the batch before the step (ActNorm's initialisation, running
            // statistics), in a candidate flow that is kept only if the step turns out finite.
            let candidate =
                if batch.numel > 0 then
                    let x, ctx = splitContext contextDim Context.training batch
                    Flow.observe ctx x flow
                else flow
            let candidateParameters = if obj.ReferenceEquals(candidate, flow) then parameters else Flow.parameters candidate
            let lossValue, grads =
                if distributed && batch.shape[0] = 0 && source.IsSome then
                    // this rank holds none of the step's rows: it adds nothing but takes part in the sum
                    0.0, candidateParameters.Values |> Array.map (fun v -> v.zerosLike())
                else
                    let value, grads = Ad.fgradNReusing (fun values -> loss (candidateParameters.WithValues values) batch candidate) candidateParameters.Values
                    value.toScalar(), grads
            let lossValue, grads =
                if not distributed then lossValue, grads
                else
                    let summed, stopAsked, grads = reduceStep collective share lossValue (askedToStop ()) grads
                    cancelled <- stopAsked
                    summed, grads
            let grads, norm = Optimiser.clipIfAsked options.ClipNorm grads
            losses.Add lossValue
            if Double.IsFinite lossValue && Double.IsFinite norm then
                // a finite loss right after a roll-back only re-scores the kept parameters: the run of
                // bad steps ends when a step after it is finite too
                if rolledBack then rolledBack <- false else bad <- 0
                lastFinite <- candidate
                let lr = options.LearningRate * Schedule.factor options.Schedule t
                let p, s = Optimiser.step options.Optimiser lr state candidateParameters grads
                parameters <- p
                state <- s
                flow <- Flow.withParameters parameters candidate
            else
                // the parameters that produced this loss came from the last update: undo it, with fresh
                // optimiser moments (the old ones carry the step that went wrong)
                bad <- bad + 1
                skipped <- skipped + 1
                rolledBack <- true
                flow <- lastFinite
                parameters <- Flow.parameters flow
                state <- Optimiser.init parameters
                if bad >= options.MaxBadSteps then
                    stop <- Some(StopReason.Diverged(t + 1), $"diverged at step {t + 1}: {bad} consecutive steps had a non-finite loss or gradient (last loss {lossValue}, gradient norm {norm}); kept the last parameters with a finite loss")
            let validation =
                match options.Validation with
                | Some v when stop.IsNone && ((t + 1) % options.ValidateEvery = 0 || t + 1 = options.Steps) ->
                    let nll = validationNll collective contextDim flow v
                    validations.Add((t + 1, nll))
                    match best with
                    | Some(_, bestNll, _) when not (nll < bestNll) ->
                        sinceBest <- sinceBest + 1
                        farAbove <- if farAboveBest nll bestNll then farAbove + 1 else 0
                    | _ when Double.IsFinite nll ->
                        // only a finite score can be the best
                        best <- Some(flow, nll, t + 1)
                        sinceBest <- 0
                        farAbove <- 0
                    | _ -> sinceBest <- sinceBest + 1
                    match patience, bestStep () with
                    | Some p, Some at when sinceBest >= p ->
                        stop <- Some(StopReason.EarlyStopped(t + 1, at), $"early stop at step {t + 1}: validation NLL has not improved for {p} checks; kept step {at}")
                    | _, Some at when farAbove >= defaultArg patience 5 ->
                        stop <- Some(StopReason.Exploded(t + 1, at), $"stopped at step {t + 1}: validation NLL stayed far above its best for {farAbove} checks; kept step {at}")
                    | _ -> ()
                    Some nll
                | _ -> None
            match options.Progress with
            | Some report when (t + 1) % options.ReportEvery = 0 || t + 1 = options.Steps ->
                report { Step = t + 1; TotalSteps = options.Steps; Loss = lossValue; Validation = validation; Seconds = clock.Elapsed.TotalSeconds }
            | _ -> ()
            t <- t + 1
        let stopReason, message =
            match stop with
            | Some(reason, message) -> reason, message
            | None when t < options.Steps -> StopReason.Cancelled t, $"stopped by the caller after {t} steps"
            | None -> StopReason.Completed, $"ran {t} steps"
        let final =
            match best, stopReason with
            | Some(bestFlow, _, _), _ -> bestFlow
            | None, StopReason.Diverged _ -> lastFinite
            | None, _ -> flow
        let report =
            { StepsRun = t
              Losses = losses.ToArray()
              Validations = validations.ToArray()
              SkippedSteps = skipped
              StoppedEarly = stopReason <> StopReason.Completed
              Stop = stopReason
              BestStep = bestStep ()
              Message = message
              Seconds = clock.Elapsed.TotalSeconds }
        match stopReason with
        | StopReason.Diverged _ -> Diverged(final, report)
        | _ -> Converged(final, report)
