namespace Flows.Training

open Flows
open Flows.Tensors

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
