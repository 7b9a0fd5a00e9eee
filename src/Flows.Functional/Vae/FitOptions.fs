namespace Flows.Vae

open Flows.Tensors
open Flows.Training

/// Options of `Vae.fit`; `VaeFitOptions.defaults` gives the usual values.
type VaeFitOptions =
    { Steps: int
      BatchSize: int
      LearningRate: float
      Optimiser: Optimiser
      /// KL warm-up: β rises linearly from 0 to 1 over these first steps (0: β = 1 throughout).
      WarmUp: int
      ClipNorm: float option
      Seed: uint64
      /// Applied to every mini-batch before it is scored: dynamic binarisation of grey images.
      Prepare: (Generator -> Tensor -> Tensor) option
      /// Stop with a report after this many consecutive non-finite steps.
      MaxBadSteps: int
      ReportEvery: int
      Progress: (VaeProgress -> unit) option
      /// Asked before every step; true stops there, keeping the parameters trained so far.
      ShouldStop: (unit -> bool) option }

/// A progress report: the step, the mean negative β-weighted ELBO of its batch, β and elapsed time.
and VaeProgress =
    { Step: int
      Loss: float
      Beta: float
      Seconds: float }

/// The record of a fit: losses per step, skipped non-finite steps and why it stopped.
type VaeReport =
    { StepsRun: int
      Losses: float[]
      SkippedSteps: int
      Diverged: bool
      /// The caller stopped it (`ShouldStop`) before every step ran.
      Cancelled: bool
      Message: string
      Seconds: float }

/// Defaults of `Vae.fit`.
[<RequireQualifiedAccess>]
module VaeFitOptions =
    /// Adam at 1e-3, batch 100, 1000 steps with a 200-step warm-up, no clipping, seed 0.
    let defaults =
        { Steps = 1000
          BatchSize = 100
          LearningRate = 1e-3
          Optimiser = Optimiser.adam
          WarmUp = 200
          ClipNorm = None
          Seed = 0UL
          Prepare = None
          MaxBadSteps = 20
          ReportEvery = 100
          Progress = None
          ShouldStop = None }
