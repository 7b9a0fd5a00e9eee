namespace Flows.Ode

open System
open Flows
open Flows.Tensors

/// Solving ODEs: dy/dt = f(t, y) from (t0, y0) to t1, forward (t1 > t0) or backward (t1 < t0) in
/// time. Pure functions of tensors: every update of the state is a tensor op, so `Ad.grad` of a
/// function of the solution reaches y0 and whatever parameters the dynamics close over
/// (backpropagation through the solver). Times are plain numbers and carry no gradient.
[<RequireQualifiedAccess>]
module Ode =

    let private checkTolerances (tolerances: Tolerances) =
        // Atol > 0 keeps the error scale positive where the state is exactly zero
        Guard.positiveFloat "solver" tolerances.Atol
        if not (tolerances.Rtol >= 0.0 && Double.IsFinite tolerances.Rtol) then
            invalidArg "solver" $"Rtol must be a finite number of at least 0, got {tolerances.Rtol}"

    let private checkArguments (solver: Solver) (options: SolverOptions) (y0: Tensor[]) (t0: float) (t1: float) (outputTimes: float[]) =
        match solver with
        | Solver.Euler steps
        | Solver.Midpoint steps
        | Solver.Rk4 steps -> Guard.positive "solver" steps
        | Solver.Dopri5 tolerances
        | Solver.Tsit5 tolerances -> checkTolerances tolerances
        match options.FirstStep with
        | Some h -> Guard.positiveFloat "options" h
        | None -> ()
        if not (options.MinStep >= 0.0 && Double.IsFinite options.MinStep) then
            invalidArg (nameof options) $"MinStep must be a finite number of at least 0, got {options.MinStep}"
        Guard.positive "options" options.MaxSteps
        Guard.that (nameof y0) (y0.Length > 0) "the state needs at least one tensor"
        for x in y0 do
            Guard.that (nameof y0) x.dtype.IsFloat $"state tensors must be float32 or float64, got {x.dtype} {Shape.show x.shape}"
            Guard.that (nameof y0) (x.dtype = y0[0].dtype && x.device = y0[0].device)
                $"state tensors must share dtype and device: {y0[0].dtype} on {y0[0].device} and {x.dtype} on {x.device}"
        match options.ErrorNorm with
        | ErrorNorm.Only indices ->
            Guard.that (nameof options) (not indices.IsEmpty) "ErrorNorm.Only needs at least one state index"
            for i in indices do
                Guard.that (nameof options) (i >= 0 && i < y0.Length) $"ErrorNorm.Only index {i} is outside the {y0.Length} state tensors"
        | ErrorNorm.All -> ()
        Guard.that (nameof t0) (Double.IsFinite t0) $"must be finite, got {t0}"
        Guard.that (nameof t1) (Double.IsFinite t1) $"must be finite, got {t1}"
        let direction = if t1 >= t0 then 1.0 else -1.0
        outputTimes
        |> Array.iteri (fun i tau ->
            if not (direction * (tau - t0) >= 0.0 && direction * (t1 - tau) >= 0.0) then
                invalidArg (nameof outputTimes) $"time {tau} at index {i} is outside [{min t0 t1}, {max t0 t1}]"
            if i > 0 && direction * (tau - outputTimes[i - 1]) < 0.0 then
                invalidArg (nameof outputTimes)
                    $"times must run from t0 = {t0} towards t1 = {t1}: {outputTimes[i - 1]} at index {i - 1} is followed by {tau}")

    // The dynamics with a check of what they return: one tensor per state tensor, shaped alike.
    // Each evaluation's intermediates go back to the thread's pool when it returns, unless its
    // results carry a recording level (backpropagation through the solver keeps them all): an
    // adjoint solve of a CNF ran at a fifth of the speed clearing fresh memory for every stage.
    let private checkedAndReused (dynamics: SystemDynamics) (y0: Tensor[]) : SystemDynamics =
        fun t y ->
            let dy = Memory.reusingAll (fun () -> dynamics t y)
            if dy.Length <> y0.Length then
                invalidArg (nameof dynamics) $"returned {dy.Length} tensors for a state of {y0.Length}"
            for i in 0 .. dy.Length - 1 do
                if dy[i].shape <> y0[i].shape then
                    invalidArg (nameof dynamics) $"derivative {i} has shape {Shape.show dy[i].shape}, the state {Shape.show y0[i].shape}"
            dy

    /// Solves dy/dt = f(t, y) for a state of several tensors (one derivative per tensor) from t0 to
    /// t1, returning the state at t1 and at each of `outputTimes` (ordered from t0 towards t1, inside
    /// [t0, t1]; adaptive solvers fill them from their interpolants). Raises OdeException when the
    /// solve cannot reach t1, ArgumentException for bad arguments. The memory of what f computes
    /// and does not return is reused by the next evaluation: f must not keep such tensors.
    let solveSystem (solver: Solver) (options: SolverOptions) (dynamics: SystemDynamics) (y0: Tensor[]) (t0: float) (t1: float) (outputTimes: float[]) : Solution<Tensor[]> =
        checkArguments solver options y0 t0 t1 outputTimes
        if t0 = t1 then
            { Final = y0; Outputs = outputTimes |> Array.map (fun _ -> y0); Times = outputTimes; Nfe = 0; Accepted = 0; Rejected = 0 }
        else
            let f = checkedAndReused dynamics y0
            match solver with
            | Solver.Euler steps -> FixedStep.integrate FixedStep.euler steps f y0 t0 t1 outputTimes
            | Solver.Midpoint steps -> FixedStep.integrate FixedStep.midpoint steps f y0 t0 t1 outputTimes
            | Solver.Rk4 steps -> FixedStep.integrate FixedStep.rk4 steps f y0 t0 t1 outputTimes
            | Solver.Dopri5 tolerances -> Adaptive.integrate Adaptive.dopri5 tolerances options f y0 t0 t1 outputTimes
            | Solver.Tsit5 tolerances -> Adaptive.integrate Adaptive.tsit5 tolerances options f y0 t0 t1 outputTimes

    /// Solves dy/dt = f(t, y) for one state tensor of any shape from t0 to t1 (`solveSystem` with a
    /// state of one tensor; to carry several, use `solveSystem` rather than concatenating).
    let solve (solver: Solver) (options: SolverOptions) (dynamics: Dynamics) (y0: Tensor) (t0: float) (t1: float) (outputTimes: float[]) : Solution<Tensor> =
        let s = solveSystem solver options (fun t y -> [| dynamics t y[0] |]) [| y0 |] t0 t1 outputTimes
        { Final = s.Final[0]
          Outputs = s.Outputs |> Array.map (fun o -> o[0])
          Times = s.Times
          Nfe = s.Nfe
          Accepted = s.Accepted
          Rejected = s.Rejected }
