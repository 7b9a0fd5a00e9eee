namespace Flows.Training

open System
open Flows
open Flows.Tensors

/// What one step of a fit hands to the next.
type StepState =
    { Flow: Flow
      Parameters: Params
      Optimiser: OptimiserState
      /// The last flow whose loss was finite: where a step that turns out non-finite rolls back to.
      LastFinite: Flow
      /// Consecutive steps with a non-finite loss or gradient.
      Bad: int
      RolledBack: bool
      /// Steps skipped in all.
      Skipped: int }

/// What one step measured.
type StepResult =
    { Loss: float
      /// The global gradient norm before clipping.
      Norm: float
      /// False when the loss or the gradient was not finite (the step was undone).
      Finite: bool
      /// Some rank was asked to stop (several ranks agree on it through the step's reduction).
      StopAsked: bool }

/// One optimiser step as a function of the state: the gradient of the batch's loss (summed over the
/// ranks of a collective), clipped, then applied, or undone when it is not finite.
[<RequireQualifiedAccess>]
module GradientStep =

    /// The state before the first step.
    let start (flow: Flow) =
        let parameters = Flow.parameters flow
        { Flow = flow; Parameters = parameters; Optimiser = Optimiser.init parameters; LastFinite = flow; Bad = 0; RolledBack = false; Skipped = 0 }

    /// Step `t` on `batch`, of which this rank holds `share` of the step's rows; `loss` scores a
    /// batch for parameters and a flow; `askedToStop` is read by ranks that agree on stopping.
    let run (options: TrainOptions) (loss: Params -> Tensor -> Flow -> Tensor) (contextDim: int) (fromData: bool) (askedToStop: unit -> bool)
            (t: int) (batch: Tensor, share: float) (state: StepState) : StepState * StepResult =
        let distributed = options.Collective.Size > 1
        // Data-dependent layers see the batch before the step (ActNorm's initialisation, running
        // statistics), in a candidate flow that is kept only if the step turns out finite.
        let candidate =
            if batch.numel > 0 then
                let x, ctx = Batches.splitContext contextDim Context.training batch
                Flow.observe ctx x state.Flow
            else state.Flow
        let candidateParameters = if obj.ReferenceEquals(candidate, state.Flow) then state.Parameters else Flow.parameters candidate
        let lossValue, grads =
            if distributed && batch.shape[0] = 0 && fromData then
                // this rank holds none of the step's rows: it adds nothing but takes part in the sum
                0.0, candidateParameters.Values |> Array.map (fun v -> v.zerosLike())
            else
                let value, grads = Ad.fgradNReusing (fun values -> loss (candidateParameters.WithValues values) batch candidate) candidateParameters.Values
                value.toScalar(), grads
        let lossValue, stopAsked, grads =
            if distributed then DataParallel.sumStep options.Collective share lossValue (askedToStop ()) grads
            else lossValue, false, grads
        let unclipped = grads
        let grads, norm = Optimiser.clipIfAsked options.ClipNorm grads
        let finite = Double.IsFinite lossValue && Double.IsFinite norm
        let next =
            if finite then
                let lr = options.LearningRate * Schedule.factor options.Schedule t
                let p, s = Optimiser.step options.Optimiser lr state.Optimiser candidateParameters grads
                { state with
                    Flow = Flow.withParameters p candidate
                    Parameters = p
                    Optimiser = s
                    LastFinite = candidate
                    // a finite loss right after a roll-back only re-scores the kept parameters: the run
                    // of bad steps ends when a step after it is finite too
                    Bad = (if state.RolledBack then state.Bad else 0)
                    RolledBack = false }
            else
                // the parameters that produced this loss came from the last update: undo it, with fresh
                // optimiser moments (the old ones carry the step that went wrong)
                let kept = Flow.parameters state.LastFinite
                { state with
                    Flow = state.LastFinite
                    Parameters = kept
                    Optimiser = Optimiser.init kept
                    Bad = state.Bad + 1
                    RolledBack = true
                    Skipped = state.Skipped + 1 }
        // the gradients are dead now: the next step's ops take their memory (SGD's buffer may be one)
        Memory.recycle (Seq.concat [ next.Parameters.Values; next.Optimiser.First; next.Optimiser.Second; state.Parameters.Values; candidateParameters.Values ])
            (Seq.append unclipped grads)
        next, { Loss = lossValue; Norm = norm; Finite = finite; StopAsked = stopAsked }
