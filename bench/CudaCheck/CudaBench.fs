/// Training-step timings on one device: the two-moons model of examples/TwoMoons (batch 512) and a
/// large RQ-NSF (8 spline coupling layers, MLP [512, 512], 8 bins, 16-D, batch 65,536). The same
/// models in PyTorch are in bench/reference/.
module Flows.CudaCheck.CudaBench

open System.Diagnostics
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Training

/// One Adam step of the NLL on `batch`; returns the loss (reading it waits for the device).
let stepper (flow: Flow) =
    let mutable flow = flow
    let mutable parameters = Flow.parameters flow
    let mutable state = Optimiser.init parameters
    fun (batch: Tensor) ->
        let value, grads = Ad.fgradN (fun vs -> Objectives.negativeLogLikelihood (parameters.WithValues vs) Context.training batch flow) parameters.Values
        let p, s = Optimiser.step Optimiser.adam 1e-4 state parameters grads
        parameters <- p
        state <- s
        flow <- Flow.withParameters p flow
        value.toScalar()

/// Median seconds of `steps` calls after `warmup` calls.
let private time (warmup: int) (steps: int) (step: unit -> float) =
    for _ in 1..warmup do step () |> ignore
    let times =
        Array.init steps (fun _ ->
            let clock = Stopwatch.StartNew()
            step () |> ignore
            clock.Elapsed.TotalSeconds)
    Array.sortInPlace times
    times[steps / 2]

/// The two-moons model: two affine coupling blocks with MLP [64, 64] conditioners and swaps.
let twoMoonsFlow () =
    let gen = Generator 1234UL
    let block () =
        [ Coupling.create gen Dtype.Float32
              { Dim = 2; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp([ 64; 64 ], Activation.Relu)
                ScaleMap = Coupling.ScaleMap.Exp; Affine = true; ContextDim = 0 }
          Permute.swap 2 ]
    Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) (block () @ block ())

/// The large model: 8 RQ-NSF coupling layers on 16 features, hidden [512, 512], 8 bins on [-3, 3].
let largeFlow () =
    let gen = Generator 99UL
    let layers = [ for i in 0..7 -> SplineCoupling.neuralSpline gen Dtype.Float32 16 [ 512; 512 ] 8 3.0 (Coupling.Mask.Half(i % 2 = 1)) ]
    Flow.create (Distribution.standardNormal [| 16 |] Dtype.Float32) layers

/// Seconds per two-moons training step (batch 512) on `device`.
let twoMoons (device: Device) =
    let step = stepper (Flow.moveTo device (twoMoonsFlow ()))
    let batch = (Toy.twoMoons (Generator 7UL) 512 Dtype.Float32).moveTo device
    time 20 50 (fun () -> step batch)

/// Seconds per large-model training step (batch `batch`) on `device`.
let large (device: Device) (batch: int) =
    let step = stepper (Flow.moveTo device (largeFlow ()))
    let data = (Generator 8UL).normal([| batch; 16 |]).moveTo device
    time 2 7 (fun () -> step data)
