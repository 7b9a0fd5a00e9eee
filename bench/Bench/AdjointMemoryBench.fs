/// The adjoint method's promise (Chen et al. 2018): memory constant in the number of solver steps,
/// where backpropagation through the solver keeps every step's intermediates for the backward pass.
/// A neural ODE (MLP [z; t] 3→64→64→2, tanh, batch 1024, float32) is solved by RK4 with 8 … 128
/// fixed steps, and a loss of the final state differentiated both ways. The figure is the memory
/// the forward pass leaves reachable for the backward one: the managed heap after a full
/// collection, measured at the end of the forward pass, minus the heap at its start (buffer reuse
/// switched off, so pooled arrays do not count), and the peak over the whole gradient, sampled the
/// same way at every 8th evaluation of the field (forward and backward solves). Also printed:
/// seconds per gradient, timed without the sampling.
module AdjointMemoryBench

open System
open System.Diagnostics
open Flows.Continuous
open Flows.Ode
open Flows.Tensors

let private batch, width = 1024, 64
let private stepCounts = [ 8; 16; 32; 64; 128 ]

/// The field f(θ, t, z) = W₃ tanh(W₂ tanh(W₁[z; t] + b₁) + b₂) + b₃.
let private field (theta: Tensor[]) (t: Tensor) (z: Tensor) =
    let time = t.expand [| z.shape[0]; 1 |]
    let h1 = (Tensor.cat([| z; time |], 1).matmul(theta[0]) + theta[1]).tanh()
    let h2 = (h1.matmul(theta[2]) + theta[3]).tanh()
    h2.matmul(theta[4]) + theta[5]

let private parameters () =
    let gen = Generator 11UL
    let layer (i: int) (o: int) = [ gen.normal([| i; o |], 0.0, 1.0 / sqrt (float i), Dtype.Float32); Tensor.zeros([| o |], Dtype.Float32) ]
    Array.ofList (layer 3 width @ layer width width @ layer width 2)

/// Heap bytes reachable after a full collection.
let private liveBytes () = GC.GetTotalMemory true

/// What one way of differentiating cost at one step count.
type private Figures = { Retained: int64; Peak: int64; Seconds: float }

/// Measures one way of differentiating with `steps` RK4 steps.
let private measure (adjoint: bool) (steps: int) =
    let z0 = (Generator 12UL).normal([| batch; 2 |], dtype = Dtype.Float32)
    let solver = Solver.Rk4 steps
    let mutable sampling, calls, baseline, peak = false, 0, 0L, 0L
    let sampled (theta: Tensor[]) (t: Tensor) (z: Tensor) =
        let dz = field theta t z
        calls <- calls + 1
        if sampling && calls % 8 = 0 then peak <- max peak (liveBytes () - baseline)
        dz
    let loss (xs: Tensor[]) =
        let before = liveBytes ()
        let final =
            if adjoint then Adjoint.solve solver SolverOptions.defaults sampled xs z0 0.0 1.0
            else (Ode.solve solver SolverOptions.defaults (fun t z -> sampled xs t z) z0 0.0 1.0 [||]).Final
        final.square().mean(), liveBytes () - before
    Memory.withoutRecycling (fun () ->
        let theta = parameters ()
        let mutable retained = 0L
        let gradient () = Ad.gradN (fun xs -> let l, bytes = loss xs in retained <- bytes; l) theta |> ignore
        gradient ()
        let clock = Stopwatch.StartNew()
        let repeats = 3
        for _ in 1 .. repeats do gradient ()
        let seconds = clock.Elapsed.TotalSeconds / float repeats
        baseline <- liveBytes ()
        sampling <- true
        gradient ()
        { Retained = retained; Peak = peak; Seconds = seconds })

/// Prints, per step count and way, the bytes kept for the backward pass, the peak and seconds per gradient.
let run () =
    Timing.comment $"neural ODE 3-{width}-{width}-2, batch {batch}, float32, RK4: bytes the forward pass keeps for the backward, and the peak over a gradient"
    let figures =
        [ for steps in stepCounts do
            for adjoint in [ false; true ] do
                let name = if adjoint then "adjoint" else "backprop"
                let f = measure adjoint steps
                Timing.report $"adjoint_memory.rk4-{steps}.{name}.retained" (float f.Retained / 1048576.0) "MiB"
                Timing.report $"adjoint_memory.rk4-{steps}.{name}.peak" (float f.Peak / 1048576.0) "MiB"
                Timing.report $"adjoint_memory.rk4-{steps}.{name}.seconds_per_gradient" f.Seconds "s"
                yield (steps, adjoint), float f.Peak ]
        |> Map.ofList
    let growth adjoint = figures[(List.last stepCounts, adjoint)] / max 1.0 figures[(List.head stepCounts, adjoint)]
    Timing.report $"adjoint_memory.backprop.peak_growth_{List.head stepCounts}_to_{List.last stepCounts}_steps" (growth false) "x"
    Timing.report $"adjoint_memory.adjoint.peak_growth_{List.head stepCounts}_to_{List.last stepCounts}_steps" (growth true) "x"
