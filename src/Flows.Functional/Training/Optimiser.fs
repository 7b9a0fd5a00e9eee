namespace Flows.Training

open Flows
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

/// Optimiser state: the step count and one or two moment tensors per parameter.
type OptimiserState =
    { Step: int
      First: Tensor[]
      Second: Tensor[] }

/// The optimisers, as data.
[<RequireQualifiedAccess>]
type Optimiser =
    /// Adam (Kingma & Ba 2015); weight decay added to the gradient as in torch.optim.Adam.
    | Adam of beta1: float * beta2: float * eps: float * weightDecay: float
    /// AdamW (Loshchilov & Hutter 2019): decoupled weight decay.
    | AdamW of beta1: float * beta2: float * eps: float * weightDecay: float
    /// SGD with (heavy-ball) momentum.
    | Sgd of momentum: float * weightDecay: float

/// Pure optimiser steps: (parameters, gradients, state) -> (parameters, state). Nothing mutates.
[<RequireQualifiedAccess>]
module Optimiser =

    /// Adam with PyTorch's defaults and no weight decay.
    let adam = Optimiser.Adam(0.9, 0.999, 1e-8, 0.0)

    /// The same optimiser with its weight decay replaced.
    let withWeightDecay (weightDecay: float) (optimiser: Optimiser) =
        match optimiser with
        | Optimiser.Adam(b1, b2, eps, _) -> Optimiser.Adam(b1, b2, eps, weightDecay)
        | Optimiser.AdamW(b1, b2, eps, _) -> Optimiser.AdamW(b1, b2, eps, weightDecay)
        | Optimiser.Sgd(momentum, _) -> Optimiser.Sgd(momentum, weightDecay)

    /// Fresh state for these parameters.
    let init (p: Params) =
        { Step = 0
          First = p.Values |> Array.map _.noDiff().zerosLike()
          Second = p.Values |> Array.map _.noDiff().zerosLike() }

    // On the CPU one pass over the array: two ops and a copy per tensor were a visible part of a
    // small model's step.
    let private sumOfSquares (g: Tensor) =
        let g = g.noDiff()
        match g.device, g.dtype with
        | Device.Cpu, Dtype.Float32 ->
            float (System.Numerics.Tensors.TensorPrimitives.SumOfSquares(System.ReadOnlySpan(CpuKernels.elements<float32> "gradientNorm" g.raw)))
        | Device.Cpu, Dtype.Float64 ->
            System.Numerics.Tensors.TensorPrimitives.SumOfSquares(System.ReadOnlySpan(CpuKernels.elements<float> "gradientNorm" g.raw))
        | _ -> g.square().sum().toScalar()

    /// The global L2 norm of the gradients.
    let gradientNorm (grads: Tensor[]) = grads |> Array.sumBy sumOfSquares |> sqrt

    /// Scales the gradients so their global norm is at most `maxNorm`; returns the norm before.
    let clip (maxNorm: float) (grads: Tensor[]) =
        let norm = gradientNorm grads
        let scale = if norm > maxNorm then maxNorm / (norm + 1e-12) else 1.0
        (if scale < 1.0 then grads |> Array.map (fun g -> g * scale) else grads), norm

    /// The gradients clipped to `clipNorm` when one is given, and their norm before clipping.
    let clipIfAsked (clipNorm: float option) (grads: Tensor[]) =
        match clipNorm with
        | Some maxNorm -> clip maxNorm grads
        | None -> grads, gradientNorm grads

    /// One step at learning rate `lr`.
    let step (optimiser: Optimiser) (lr: float) (state: OptimiserState) (p: Params) (grads: Tensor[]) =
        let t = state.Step + 1
        let values = p.Values |> Array.map _.noDiff()
        let grads = grads |> Array.map _.noDiff()
        match optimiser with
        | Optimiser.Adam(b1, b2, eps, decay)
        | Optimiser.AdamW(b1, b2, eps, decay) ->
            let config =
                { LearningRate = lr; Beta1 = b1; Beta2 = b2; Eps = eps; WeightDecay = decay
                  Decoupled = (match optimiser with Optimiser.AdamW _ -> true | _ -> false); Step = t }
            let updated = Array.init values.Length (fun i -> Tensor.adamStep(values[i], grads[i], state.First[i], state.Second[i], config))
            p.WithValues(updated |> Array.map (fun (w, _, _) -> w)),
            { Step = t; First = updated |> Array.map (fun (_, m, _) -> m); Second = updated |> Array.map (fun (_, _, v) -> v) }
        | Optimiser.Sgd(momentum, decay) ->
            let updated =
                Array.init values.Length (fun i ->
                    let g = if decay > 0.0 then grads[i] + values[i] * decay else grads[i]
                    let buf = if t = 1 || momentum = 0.0 then g else state.First[i] * momentum + g
                    values[i] - buf * lr, buf)
            p.WithValues(updated |> Array.map fst), { state with Step = t; First = updated |> Array.map snd }

/// Learning-rate schedules: step number (from 0) to a multiplier of the base rate.
[<RequireQualifiedAccess>]
type Schedule =
    | Constant
    /// Cosine decay from 1 to `floor` over `steps`.
    | Cosine of steps: int * floor: float
    /// Multiply by `gamma` every `every` steps.
    | Step of every: int * gamma: float
    /// Glow's linear warm-up: (t + 1)/`steps` of the rate for the first `steps` steps, then all of it.
    | Warmup of steps: int

/// Evaluating schedules.
[<RequireQualifiedAccess>]
module Schedule =
    /// The multiplier at step `t`.
    let factor (schedule: Schedule) (t: int) =
        match schedule with
        | Schedule.Constant -> 1.0
        | Schedule.Cosine(steps, floor) ->
            let progress = min 1.0 (float t / float (max steps 1))
            floor + (1.0 - floor) * 0.5 * (1.0 + cos (System.Math.PI * progress))
        | Schedule.Step(every, gamma) -> gamma ** float (t / max every 1)
        | Schedule.Warmup steps -> min 1.0 (float (t + 1) / float (max steps 1))
