/// The two-moons training step of document 003 (examples/TwoMoons: 2 affine couplings [1, 64, 64, 2]
/// with exp scales, swaps, Adam 5e-4 with weight decay 1e-5, batch 512) on one fixed batch, in steps per
/// second of wall time and per second of the calling thread's CPU time. The second figure hardly moves
/// when other processes share the cores, so it tracks the step's own cost while a machine is busy.
module StepBench

open System.Diagnostics
open System.Runtime.InteropServices
open Flows
open Flows.Bijectors
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Training

[<Struct; StructLayout(LayoutKind.Sequential)>]
type private TimeSpec =
    val mutable Seconds: int64
    val mutable Nanoseconds: int64

[<DllImport("libc", SetLastError = true)>]
extern int private clock_gettime(int clock, TimeSpec& time)

// CLOCK_THREAD_CPUTIME_ID
let private threadCpuSeconds () =
    let mutable t = TimeSpec()
    if clock_gettime(3, &t) <> 0 then nan else float t.Seconds + float t.Nanoseconds * 1e-9

let private fit (steps: int) =
    let g = Generator 1234UL
    let block () =
        [ Coupling.create g Dtype.Float32
              { Dim = 2; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp([ 64; 64 ], Activation.Relu)
                ScaleMap = Coupling.ScaleMap.Exp; Affine = true; ContextDim = 0 }
          Permute.swap 2 ]
    let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) (block () @ block ())
    let options = { TrainOptions.defaults with Steps = steps; BatchSize = 512; LearningRate = 5e-4; Optimiser = Optimiser.Adam(0.9, 0.999, 1e-8, 1e-5) }
    Train.fit options (Objective.ForwardKl(DataSource.Dataset(Toy.twoMoons (Generator 2UL) 512 Dtype.Float32))) flow |> ignore

let run () =
    fit 500 |> ignore
    let steps = 3000
    let cpu = threadCpuSeconds ()
    let clock = Stopwatch.StartNew()
    fit steps
    let wall = clock.Elapsed.TotalSeconds
    let used = threadCpuSeconds () - cpu
    Timing.report "step.two_moons.2x64.batch512.fixed_batch.wall" (float steps / wall) "it/s"
    Timing.report "step.two_moons.2x64.batch512.fixed_batch.thread_cpu" (float steps / used) "it/s"
