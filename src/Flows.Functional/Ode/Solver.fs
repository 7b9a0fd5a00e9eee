namespace Flows.Ode

open System
open System.Globalization
open Flows.Tensors

/// The right-hand side of dy/dt = f(t, y): `t` is a rank-0 tensor of the state's dtype (a
/// constant), `y` a state tensor of any shape; the result has y's shape.
type Dynamics = Tensor -> Tensor -> Tensor

/// The right-hand side of a system whose state is several tensors of different shapes (a CNF's
/// samples and log-density change, an adjoint's [z, a, a_θ]): one derivative per state tensor, in
/// order and with the same shapes. No concatenation is needed; every solver works on arrays.
type SystemDynamics = Tensor -> Tensor[] -> Tensor[]

/// Error tolerances of the adaptive solvers: a step is accepted when every controlled element has
/// |err| ≤ Atol + Rtol·max(|y0|, |y1|).
type Tolerances = { Atol: float; Rtol: float }

/// Tolerance presets.
[<RequireQualifiedAccess>]
module Tolerances =

    /// Atol 1e-6, Rtol 1e-5 (zuko's odeint defaults; reachable in float32).
    let defaults = { Atol = 1e-6; Rtol = 1e-5 }

    /// The same value for Atol and Rtol (FFJORD's "tolerance 1e-5" convention).
    let uniform (tolerance: float) = { Atol = tolerance; Rtol = tolerance }

/// An ODE solver. The fixed-step ones take the number of equal steps between t0 and t1 (a count,
/// not a size, so that one value serves forward and backward solves and every interval length);
/// the adaptive ones take their tolerances.
[<RequireQualifiedAccess>]
type Solver =
    /// Forward Euler, order 1, one evaluation per step.
    | Euler of steps: int
    /// The explicit midpoint rule, order 2, two evaluations per step.
    | Midpoint of steps: int
    /// The classical Runge–Kutta method, order 4, four evaluations per step.
    | Rk4 of steps: int
    /// Dormand–Prince 5(4) (Dopri5), FSAL, with Shampine's 4th-order dense output.
    | Dopri5 of Tolerances
    /// Tsitouras 5(4) (Tsit5, 2011), FSAL, with its own 4th-order interpolant.
    | Tsit5 of Tolerances

/// Which state tensors the adaptive error norm reads.
[<RequireQualifiedAccess>]
type ErrorNorm =
    /// Every element of every state tensor.
    | All
    /// Only the state tensors at these indices: a seminorm, as torchdiffeq's for the adjoint's
    /// parameter part, whose accuracy does not feed back into the state.
    | Only of indices: int list

/// How the adaptive controller measures a step's error, each element scaled by atol + rtol·|y|.
[<RequireQualifiedAccess>]
type ErrorMeasure =
    /// The largest scaled element: every element of every row meets the tolerance (strict).
    | Max
    /// Per state tensor the root mean square of the scaled elements, then the largest over the
    /// tensors (torchdiffeq's default "mixed" norm): the tolerance holds on average over a batch.
    | RootMeanSquare

/// Options of a solve. MinStep, MaxSteps, FirstStep, ErrorNorm and ErrorMeasure concern the
/// adaptive solvers only.
type SolverOptions =
    { /// The size of the first step (positive; its sign follows t0 → t1); None selects it from
      /// f(t0, y0) by Hairer's rule, at the cost of one evaluation.
      FirstStep: float option
      /// The smallest step the controller may propose; a smaller proposal raises StepSizeUnderflow.
      /// 0 leaves only the numerical limit (a step that no longer moves t).
      MinStep: float
      /// The most steps a solve may attempt, accepted and rejected together.
      MaxSteps: int
      /// Which state tensors the error norm reads.
      ErrorNorm: ErrorNorm
      /// How it measures them.
      ErrorMeasure: ErrorMeasure }

/// Option presets.
[<RequireQualifiedAccess>]
module SolverOptions =

    /// First step selected, no minimum step, at most 10,000 attempted steps, every element of every
    /// tensor controlled by the max measure.
    let defaults = { FirstStep = None; MinStep = 0.0; MaxSteps = 10_000; ErrorNorm = ErrorNorm.All; ErrorMeasure = ErrorMeasure.Max }

/// The result of a solve: the state at t1 and at each requested output time.
type Solution<'State> =
    { /// The state at t1.
      Final: 'State
      /// The state at each requested output time, in the order given.
      Outputs: 'State[]
      /// The requested output times.
      Times: float[]
      /// Evaluations of the dynamics (NFE), including step selection and dense output.
      Nfe: int
      /// Accepted steps (every step, for the fixed-step solvers).
      Accepted: int
      /// Rejected steps (always 0 for the fixed-step solvers).
      Rejected: int }

/// Why a solve stopped before t1.
[<RequireQualifiedAccess>]
type OdeFailure =
    /// The controller needed a step below MinStep, or one too small to move t (stiffness, or a
    /// state blowing up, often after training diverged).
    | StepSizeUnderflow of t: float * dt: float * errorRatio: float
    /// The state or its derivative held NaN or infinity at t.
    | NonFiniteState of t: float
    /// MaxSteps steps were attempted without reaching t1; t is where the solve stood.
    | MaxStepsExceeded of t: float * maxSteps: int

    /// The failure in words, with its values.
    member f.Message =
        let show (v: float) = v.ToString("R", CultureInfo.InvariantCulture)
        match f with
        | StepSizeUnderflow(t, dt, ratio) ->
            $"step size underflow at t={show t} (dt={show dt}, last error ratio {show ratio})"
        | NonFiniteState t -> $"non-finite state at t={show t}"
        | MaxStepsExceeded(t, maxSteps) -> $"max steps exceeded: {maxSteps} steps attempted, stopped at t={show t}"

/// Raised when a solve cannot reach t1; `Failure` says why, with the time where it stopped, so a
/// training loop can catch it and keep its last good parameters.
type OdeException(failure: OdeFailure) =
    inherit Exception(failure.Message)

    /// Why the solve stopped.
    member _.Failure = failure
