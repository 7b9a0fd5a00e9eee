namespace Flows.Continuous

open System
open Flows
open Flows.Nn
open Flows.Ode
open Flows.Tensors

/// How a CNF bijector computes the divergence in each solve.
[<RequireQualifiedAccess>]
type CnfTrace =
    /// The exact trace (D VJPs per evaluation): the log-det is exact up to the solver tolerance.
    | Exact
    /// Hutchinson's estimator with a fresh probe from `gen` for every solve (one VJP per
    /// evaluation): an unbiased log-det for training, not a deterministic map of its input.
    | Hutchinson of noise: Noise * gen: Generator

/// How a CNF bijector's solves are differentiated.
[<RequireQualifiedAccess>]
type CnfGradient =
    /// Backpropagation through the solver's steps: exact gradients of the discrete solve, memory
    /// growing with the number of steps.
    | Backprop
    /// The adjoint method (`Adjoint.solveSystem`): memory constant in the steps, gradients accurate
    /// to the solver tolerance.
    | Adjoint

/// What one solve of a CNF cost, as reported to `CnfOptions.OnSolve`.
type CnfSolve =
    { /// The map's solve, or (adjoint gradients only) the backward solve run when gradients are taken.
      Pass: SolvePass
      /// Where the solve started and ended: 0 → T for the forward map, T → 0 for the inverse; the
      /// backward pass runs the other way.
      From: float
      To: float
      /// Evaluations of the dynamics (of the augmented [z, a, a_θ] dynamics in the backward pass).
      Nfe: int
      Accepted: int
      Rejected: int }

/// Dynamics whose parameters are read from a `Params`: (parameters, t rank 0, z [B; D]) → dz/dt.
type ParameterisedField = Params -> Tensor -> Tensor -> Tensor

/// Dynamics that also read the rows' contexts [B; C] (None for an unconditional flow): f(z, t, c).
type ConditionalField = Tensor option -> ParameterisedField

/// The shape of a CNF bijector.
type CnfOptions =
    { /// Hidden layer sizes of the dynamics MLP (D + 1 → hidden… → D, tanh between layers).
      Hidden: int list
      /// The end time T: forward integrates over [0, T].
      EndTime: float
      /// Dopri5's Atol = Rtol in float64; float32 solves use at least Atol 1e-6, Rtol 1e-5.
      Tolerance: float
      /// How Dopri5 measures a step's error over the batch: Max (every row meets the tolerance) or
      /// RootMeanSquare (torchdiffeq's default: on average over the batch, fewer steps).
      ErrorMeasure: ErrorMeasure
      /// How the divergence is computed.
      Trace: CnfTrace
      /// How the solves are differentiated.
      Gradient: CnfGradient
      /// Called after every solve with its cost (NFE, steps), so a training loop can log forward and
      /// backward NFE per iteration; the bijector stays a pure map and the caller owns the effect.
      /// Under backpropagation there is no backward solve, so only `SolvePass.Forward` is reported.
      /// Not saved with the model.
      OnSolve: (CnfSolve -> unit) option
      /// Width of the context the dynamics read, f(z, t, c) (0: unconditional).
      ContextDim: int }

/// Continuous normalising flow (FFJORD, Grathwohl et al. 2019; Chen et al. 2018), forward base →
/// data: dz/dt = f(t, z) from t = 0 to T with f an MLP on [z; t], and log|det ∂z(T)/∂z(0)| =
/// ∫₀ᵀ tr(∂f/∂z(t, z(t))) dt (the instantaneous change of variables), integrated alongside z by
/// Dopri5. The inverse (data → base) integrates the same system from T back to 0. A conditional CNF
/// reads the context in its dynamics, f(z, t, c) = MLP([z; t; c]); c rides along in the solve as a
/// state with zero derivative, so backpropagation and the adjoint both carry its gradient.
[<RequireQualifiedAccess>]
module Cnf =

    /// Options presets: hidden [16; 16], T = 1, tolerance 1e-8 on every element, exact trace,
    /// backpropagation, no solve reports.
    let defaults =
        { Hidden = [ 16; 16 ]; EndTime = 1.0; Tolerance = 1e-8; ErrorMeasure = ErrorMeasure.Max
          Trace = CnfTrace.Exact; Gradient = CnfGradient.Backprop; OnSolve = None; ContextDim = 0 }

    // The system [z; log-det] for the field f(t, z) with the divergence computed as `mode` says.
    let private divergenceSystem (mode: TraceMode) (f: Tensor -> Tensor -> Tensor) : SystemDynamics =
        fun t state ->
            let dz, divergence = Trace.divergence mode (f t) state[0]
            [| dz; divergence |]

    /// Integrates rows z0 [B; D] under dz/dt = f(t, z) from t0 to t1 together with the divergence:
    /// returns z(t1), ∫_{t0}^{t1} tr(∂f/∂z) dt per row (log|det ∂z(t1)/∂z(t0)|, [B]) and the
    /// solution (NFE, steps). Differentiable by backpropagation through the solver.
    let integrate (solver: Solver) (options: SolverOptions) (trace: TraceMode) (f: Tensor -> Tensor -> Tensor) (z0: Tensor) (t0: float) (t1: float) =
        if z0.dim <> 2 then invalidArg (nameof z0) $"Cnf.integrate: expected rows [batch; dim], got {Shape.show z0.shape}"
        let solution = Ode.solveSystem solver options (divergenceSystem trace f) [| z0; Bijector.zeroLogDet z0 |] t0 t1 [||]
        solution.Final[0], solution.Final[1], solution

    /// The dynamics MLP on [z; t] or, given contexts c [B; C], on [z; t; c]: `t` rank 0, `z` [B; D].
    let conditionalDynamics (c: Tensor option) (p: Params) (t: Tensor) (z: Tensor) =
        let time = t.reshape([| 1; 1 |]).expand([| z.shape[0]; 1 |])
        let inputs = match c with Some c -> [| z; time; c |] | None -> [| z; time |]
        Mlp.apply Activation.Tanh p (Tensor.cat(inputs, 1))

    /// The dynamics MLP on [z; t]: `t` rank 0, `z` [B; D].
    let dynamics (p: Params) (t: Tensor) (z: Tensor) = conditionalDynamics None p t z

    /// The solver for rows of a dtype: float32 cannot meet float64 tolerances.
    let solverFor (dtype: Dtype) (tolerance: float) =
        if dtype = Dtype.Float32 then Solver.Dopri5 { Atol = max tolerance 1e-6; Rtol = max tolerance 1e-5 }
        else Solver.Dopri5(Tolerances.uniform tolerance)

    /// The probe mode of one solve: a fresh Hutchinson probe from the trace's generator per call.
    let traceMode (trace: CnfTrace) (x: Tensor) =
        match trace with
        | CnfTrace.Exact -> TraceMode.Exact
        | CnfTrace.Hutchinson(noise, gen) -> TraceMode.Hutchinson(Trace.probe noise gen x)

    let private measureName (measure: ErrorMeasure) =
        match measure with
        | ErrorMeasure.Max -> "max"
        | ErrorMeasure.RootMeanSquare -> "rms"

    let private parseMeasure (name: string) =
        match name with
        | "max" -> ErrorMeasure.Max
        | "rms" -> ErrorMeasure.RootMeanSquare
        | other -> invalidArg "settings" $"unknown CNF error measure '{other}'; expected max or rms"

    let private traceName (trace: CnfTrace) =
        match trace with
        | CnfTrace.Exact -> "exact"
        | CnfTrace.Hutchinson(Noise.Gaussian, _) -> "hutchinson-gaussian"
        | CnfTrace.Hutchinson(Noise.Rademacher, _) -> "hutchinson-rademacher"

    /// An observer for `solveSystem` that reports each solve over t0 → t1 to `onSolve` as a `CnfSolve`.
    let observer (onSolve: (CnfSolve -> unit) option) (t0: float) (t1: float) (pass: SolvePass) (solution: Solution<Tensor[]>) =
        match onSolve with
        | Some onSolve ->
            let from, until = if pass = SolvePass.Forward then t0, t1 else t1, t0
            onSolve { Pass = pass; From = from; To = until; Nfe = solution.Nfe; Accepted = solution.Accepted; Rejected = solution.Rejected }
        | None -> ()

    /// Solves the system that `system` builds from parameters `p`, from `start` over t0 → t1,
    /// differentiated as `gradient` says, and hands each solve to `observe` (under backpropagation
    /// only the forward solve exists). The one solve behind every CNF bijector and objective.
    let solveSystem (gradient: CnfGradient) (observe: SolvePass -> Solution<Tensor[]> -> unit) (solver: Solver) (options: SolverOptions) (system: Params -> SystemDynamics) (p: Params) (start: Tensor[]) (t0: float) (t1: float) : Tensor[] =
        match gradient with
        | CnfGradient.Backprop ->
            let solution = Ode.solveSystem solver options (system p) start t0 t1 [||]
            observe SolvePass.Forward solution
            solution.Final
        | CnfGradient.Adjoint -> Adjoint.solveSystemObserved observe solver options (fun theta -> system (p.WithValues theta)) p.Values start t0 t1

    /// `solveSystem` for a system that reads the rows' contexts: with `condition = Some c`, c is
    /// appended to the state with zero derivative (so the adjoint's backward solve returns its
    /// gradient too, where a captured constant would silently get none) and dropped from the result.
    /// Its error is zero and the step control measures each state tensor apart, so the steps are
    /// those of the same solve without the context.
    let solveConditioned (gradient: CnfGradient) (observe: SolvePass -> Solution<Tensor[]> -> unit) (solver: Solver) (options: SolverOptions) (system: Params -> Tensor option -> SystemDynamics) (p: Params) (condition: Tensor option) (start: Tensor[]) (t0: float) (t1: float) : Tensor[] =
        match condition with
        | None -> solveSystem gradient observe solver options (fun q -> system q None) p start t0 t1
        | Some c ->
            let k = start.Length
            let carried (q: Params) : SystemDynamics =
                fun t state -> Array.append (system q (Some state[k]) t state[.. k - 1]) [| state[k].zerosLike() |]
            (solveSystem gradient observe solver options carried p (Array.append start [| c |]) t0 t1)[.. k - 1]

    /// One side of a CNF whose field reads the rows' contexts (width `contextDim`, 0 for none):
    /// rows x integrated under dz/dt = field c p t z from t0 to t1 with the divergence in z (Dopri5
    /// at `tolerance`, as `solverFor`, its error measured as `measure` says), differentiated as
    /// `gradient` says; each solve's cost goes to `onSolve`.
    let conditionalSide (trace: CnfTrace) (gradient: CnfGradient) (tolerance: float) (measure: ErrorMeasure) (onSolve: (CnfSolve -> unit) option) (contextDim: int) (field: ConditionalField) (t0: float) (t1: float) : MapWithLogDet =
        fun p ctx x ->
            if x.dim <> 2 then invalidArg (nameof x) $"Cnf: expected rows [batch; dim], got {Shape.show x.shape}"
            let condition = Context.forLayer "cnf" contextDim x.shape[0] ctx
            // one probe per solve, drawn here: the adjoint rebuilds `system` at every backward
            // evaluation, and must see the probe the forward solve used (as FFJORD does)
            let mode = traceMode trace x
            let system (q: Params) (c: Tensor option) = divergenceSystem mode (field c q)
            let final =
                solveConditioned gradient (observer onSolve t0 t1) (solverFor x.dtype tolerance) { SolverOptions.defaults with ErrorMeasure = measure }
                    system p condition [| x; Bijector.zeroLogDet x |] t0 t1
            final[0], final[1]

    /// One side of a CNF for any parameterised field (the MLP here; a hypernetwork, an augmented
    /// field elsewhere): `conditionalSide` for a field that reads no context.
    let side (trace: CnfTrace) (gradient: CnfGradient) (tolerance: float) (measure: ErrorMeasure) (onSolve: (CnfSolve -> unit) option) (field: ParameterisedField) (t0: float) (t1: float) : MapWithLogDet =
        conditionalSide trace gradient tolerance measure onSolve 0 (fun _ -> field) t0 t1

    /// The checks every continuous bijector makes of its dimension, tolerance and end time.
    let checkOptions (dim: int) (tolerance: float) (endTime: float) =
        Guard.positive (nameof dim) dim
        Guard.positiveFloat "options" tolerance
        Guard.that "options" (Double.IsFinite endTime && endTime > 0.0) $"EndTime must be a finite positive number, got {endTime}"

    /// A CNF on rows of dimension `dim` with the given options (conditional when ContextDim > 0); the
    /// MLP starts as PyTorch's nn.Linear does.
    let createWith (options: CnfOptions) (gen: Generator) (dtype: Dtype) (dim: int) =
        checkOptions dim options.Tolerance options.EndTime
        Guard.that "options" (options.ContextDim >= 0) $"ContextDim must be at least 0, got {options.ContextDim}"
        let settings =
            Settings.ofList
                [ "dim", Setting.Int dim
                  "hidden", Setting.Ints(Array.ofList options.Hidden)
                  "time", Setting.Float options.EndTime
                  "tolerance", Setting.Float options.Tolerance
                  "errorMeasure", Setting.Text(measureName options.ErrorMeasure)
                  "trace", Setting.Text(traceName options.Trace)
                  "gradient", Setting.Text(match options.Gradient with CnfGradient.Backprop -> "backprop" | CnfGradient.Adjoint -> "adjoint")
                  "contextDim", Setting.Int options.ContextDim ]
        let side = conditionalSide options.Trace options.Gradient options.Tolerance options.ErrorMeasure options.OnSolve options.ContextDim conditionalDynamics
        Bijector.create "cnf" settings [| dim |]
            (Mlp.create gen dtype ([ dim + 1 + options.ContextDim ] @ options.Hidden @ [ dim ]) false)
            (side 0.0 options.EndTime) (side options.EndTime 0.0)

    /// A CNF with the default options (exact trace).
    let create (gen: Generator) (dtype: Dtype) (dim: int) = createWith defaults gen dtype dim

    /// The options a CNF layer was made with, read from its settings (a Hutchinson CNF draws its
    /// probes from Generator 0; no solve reports).
    let optionsOf (settings: Settings) =
        let trace =
            match Settings.text "trace" settings with
            | "exact" -> CnfTrace.Exact
            | "hutchinson-gaussian" -> CnfTrace.Hutchinson(Noise.Gaussian, Generator 0UL)
            | "hutchinson-rademacher" -> CnfTrace.Hutchinson(Noise.Rademacher, Generator 0UL)
            | other -> invalidArg (nameof settings) $"unknown CNF trace '{other}'"
        let gradient =
            match Settings.text "gradient" settings with
            | "backprop" -> CnfGradient.Backprop
            | "adjoint" -> CnfGradient.Adjoint
            | other -> invalidArg (nameof settings) $"unknown CNF gradient '{other}'"
        { Gradient = gradient
          Hidden = List.ofArray (Settings.ints "hidden" settings)
          EndTime = Settings.float "time" settings
          Tolerance = Settings.float "tolerance" settings
          // models saved before the setting existed were solved with the max measure
          ErrorMeasure = (if settings.ContainsKey "errorMeasure" then parseMeasure (Settings.text "errorMeasure" settings) else ErrorMeasure.Max)
          Trace = trace
          OnSolve = None
          // models saved before conditional CNFs have no context
          ContextDim = (if settings.ContainsKey "contextDim" then Settings.int "contextDim" settings else 0) }

    /// Rebuilds from settings (a Hutchinson CNF draws its probes from Generator 0).
    let build (dtype: Dtype) (settings: Settings) =
        createWith (optionsOf settings) (Generator 0UL) dtype (Settings.int "dim" settings)

    /// The CNF layer `layer` with its divergence computed as `trace` says, the same parameters and
    /// options otherwise; any other layer unchanged. For training with Hutchinson's estimator and
    /// scoring the trained layer with the exact trace.
    let withTrace (trace: CnfTrace) (layer: Bijector) =
        if layer.Name <> "cnf" then layer
        else
            let options = { optionsOf layer.Settings with Trace = trace }
            let rebuilt = createWith options (Generator 0UL) Dtype.Float64 (Settings.int "dim" layer.Settings)
            { rebuilt with Params = layer.Params }

    /// The flow with every CNF layer's divergence computed as `trace` says.
    let flowWithTrace (trace: CnfTrace) (flow: Flow) = { flow with Layers = List.map (withTrace trace) flow.Layers }

    // The catalogue's layer: small, and tight enough that log-dets match the autodiff Jacobian.
    let private catalogueOptions = { defaults with Hidden = [ 8 ] }

    let private entryFor (name: string) (options: CnfOptions) =
        { Entry.exact name build (createWith options) with
            InverseKind = InverseKind.Iterative options.Tolerance }

    /// The catalogue entry: exact trace, Dopri5 at 1e-8.
    [<CatalogueEntry>]
    let entry = entryFor "cnf" catalogueOptions
