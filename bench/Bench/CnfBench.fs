/// The CNF training figure: HexagonCnf's model (MLP [x; t] 3→64→64→64→2 with tanh,
/// exact trace, Dopri5 at 1e-4 with torchdiffeq's RMS error measure, adjoint gradients, AdamW 2e-3, batch 1024 of z-scored hexagon
/// samples) trained through Train.fit; after a few warm-up iterations, the median seconds of a fixed
/// number of iterations and their mean forward and backward NFE. The same model in PyTorch +
/// torchdiffeq is bench/reference/hexagon_cnf_torchdiffeq.py; bench/CudaCheck measures it on a GPU.
module CnfBench

open System
open Flows
open Flows.Continuous
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Ode
open Flows.Tensors
open Flows.Training

let private warmup, timed = 3, 10

/// What `measure` found: median seconds per training iteration and the mean NFE of the timed
/// iterations' forward and backward solves.
type CnfFigures = { SecondsPerIteration: float; NfeForward: float; NfeBackward: float }

/// The name of the figures, shared by the CPU bench and bench/CudaCheck.
let name = "cnf.hexagon.3-64-64-64-2.batch1024.dopri5-1e-4.adjoint"

/// 16,384 hexagon samples z-scored with one mean and one std, in float32 (as HexagonCnf trains).
let hexagonRows () =
    let data = Toy.hexagon (Generator 1UL) (1 <<< 14) Dtype.Float64
    let values = data.toArray64()
    let mean = Array.average values
    let std = sqrt (Array.sumBy (fun v -> (v - mean) ** 2.0) values / float (values.Length - 1))
    ((data - mean) / std).cast Dtype.Float32

/// The flow (standard normal base, one CNF from Generator 7), each solve's cost going to `onSolve`.
let flow (onSolve: CnfSolve -> unit) =
    let options = { Hidden = [ 64; 64; 64 ]; EndTime = 1.0; Tolerance = 1e-4; ErrorMeasure = ErrorMeasure.RootMeanSquare; Trace = CnfTrace.Exact; Gradient = CnfGradient.Adjoint; OnSolve = Some onSolve; ContextDim = 0 }
    Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float32) [ Cnf.createWith options (Generator 7UL) Dtype.Float32 2 ]

/// The training options: batch 1024, AdamW 2e-3 with weight decay 1e-5, seed 3.
let training =
    { TrainOptions.defaults with
        BatchSize = 1024
        LearningRate = 2e-3
        Optimiser = Optimiser.AdamW(0.9, 0.999, 1e-8, 1e-5)
        Seed = 3UL }

/// Trains the model on `device` for the warm-up and timed iterations and measures them.
let measure (device: Device) : CnfFigures =
    let rows = (hexagonRows ()).moveTo device
    let forward, backward = ResizeArray<int>(), ResizeArray<int>()
    let onSolve (s: CnfSolve) =
        match s.Pass with
        | SolvePass.Forward -> forward.Add s.Nfe
        | SolvePass.Backward -> backward.Add s.Nfe
    let flow = flow onSolve |> Flow.moveTo device
    // Progress after every step gives each step's end time; the timed steps follow the warm-up
    let ends = ResizeArray<float>()
    let train = { training with Steps = warmup + timed; ReportEvery = 1; Progress = Some(fun p -> ends.Add p.Seconds) }
    Train.fit train (Objective.ForwardKl(DataSource.Dataset rows)) flow |> ignore
    let durations = Array.init timed (fun i -> ends[warmup + i] - ends[warmup + i - 1])
    Array.sortInPlace durations
    let meanOfTimed (counts: ResizeArray<int>) = counts |> Seq.skip warmup |> Seq.averageBy float
    { SecondsPerIteration = durations[timed / 2]; NfeForward = meanOfTimed forward; NfeBackward = meanOfTimed backward }

/// Prints seconds per training iteration and the NFE of its forward and backward solves, on the CPU.
let run () =
    let figures = measure Device.Cpu
    Timing.comment $"{timed} training iterations after {warmup} warm-up iterations (float32, exact trace)"
    Timing.report $"{name}.seconds_per_iteration" figures.SecondsPerIteration "s"
    Timing.report $"{name}.nfe_forward" figures.NfeForward "evaluations"
    Timing.report $"{name}.nfe_backward" figures.NfeBackward "evaluations"
