namespace Flows.Continuous

open Flows
open Flows.Distributions
open Flows.Nn
open Flows.Ode
open Flows.Tensors
open Flows.Training

/// Conditional flow matching (CFM; Lipman et al. 2023, "Flow Matching for Generative Modeling")
/// with the linear (optimal-transport) conditional path from a base point x0 to a data point x1:
/// x_t = (1 − (1 − σ_min)t)·x0 + t·x1, whose velocity is u_t = x1 − (1 − σ_min)·x0. A velocity field
/// v(x, t) (a CNF's dynamics MLP) is regressed on u_t at t ~ U(0, 1), with no ODE solve in training.
/// The trained model is an ordinary Flow (base → one CNF with T = 1): samples integrate v from 0 to
/// 1, log-densities come from the CNF integration of the same field from 1 back to 0. A conditional
/// model (CnfOptions.ContextDim > 0) regresses v(x, t, c) on pairs (x1, c) and samples from p(x | c)
/// by integrating v(·, ·, c): the path and its target velocity do not depend on c.
[<RequireQualifiedAccess>]
module FlowMatching =

    /// Points on the conditional path at per-row times t [B; 1].
    let interpolate (sigmaMin: float) (x0: Tensor) (x1: Tensor) (t: Tensor) = x0 * (1.0 - (1.0 - sigmaMin) * t) + x1 * t

    /// The conditional path's velocity dx_t/dt = x1 − (1 − σ_min)·x0, the regression target.
    let targetVelocity (sigmaMin: float) (x0: Tensor) (x1: Tensor) = x1 - x0 * (1.0 - sigmaMin)

    /// The CNF dynamics MLP on [x; t] at per-row times t [B; 1] (`Cnf.dynamics` takes one time for
    /// all rows, as an ODE solve does; training draws a time per row).
    let velocity (p: Params) (t: Tensor) (x: Tensor) = Mlp.apply Activation.Tanh p (Tensor.cat([| x; t |], 1))

    /// `velocity` of a conditional model on [x; t; c], the input order of `Cnf.conditionalDynamics`.
    let conditionalVelocity (c: Tensor option) (p: Params) (t: Tensor) (x: Tensor) =
        match c with
        | Some c -> Mlp.apply Activation.Tanh p (Tensor.cat([| x; t; c |], 1))
        | None -> velocity p t x

    /// The CFM loss of a velocity on per-row times: the mean over rows of ‖v(x_t, t) − u_t‖².
    let loss (sigmaMin: float) (velocity: Tensor -> Tensor -> Tensor) (x0: Tensor) (x1: Tensor) (t: Tensor) =
        let residual = velocity t (interpolate sigmaMin x0 x1 t) - targetVelocity sigmaMin x0 x1
        residual.square().sum(1).mean()

    /// A flow-matching model of rows of dimension `dim`: a standard normal base and one CNF whose
    /// end time is 1 (the other options keep their meaning for sampling and log-densities).
    let create (options: CnfOptions) (gen: Generator) (dtype: Dtype) (dim: int) : Flow =
        Flow.create (Distribution.standardNormal [| dim |] dtype) [ Cnf.createWith { options with EndTime = 1.0 } gen dtype dim ]

    // The CNF layer of a flow-matching model, checked: the path's time runs over [0, 1].
    let private cnfLayer (flow: Flow) =
        match flow.Layers with
        | [ b ] when b.Name = "cnf" && Settings.float "time" b.Settings = 1.0 -> b
        | layers ->
            let names = layers |> List.map _.Name |> String.concat "; "
            invalidArg (nameof flow) $"flow matching needs a flow of one CNF layer with end time 1 (FlowMatching.create), got layers [{names}]"

    // The width of the model's context (0: unconditional).
    let private contextDimOf (layer: Bijector) = (Cnf.optionsOf layer.Settings).ContextDim

    /// The field v(t, x, c) of a conditional flow-matching model for the rows' contexts in `ctx`
    /// (checked against the model's context width; an unconditional model ignores them).
    let conditionalField (ctx: Context) (rows: int) (flow: Flow) : Dynamics =
        let layer = cnfLayer flow
        Cnf.conditionalDynamics (Context.forLayer "flow matching" (contextDimOf layer) rows ctx) layer.Params

    /// The velocity field v(t, x) of an unconditional flow-matching model as ODE dynamics (t rank 0);
    /// a conditional model raises, naming the context it needs (`conditionalField` takes one).
    let field (flow: Flow) : Dynamics = conditionalField Context.none 0 flow

    /// Integrates rows z0 along `field` from t = 0 to 1 (no log-det: sampling only); the solution
    /// also holds the states at `outputTimes` in [0, 1] (trajectories) and the NFE.
    let transport (solver: Solver) (field: Dynamics) (z0: Tensor) (outputTimes: float[]) : Solution<Tensor> =
        Ode.solve solver SolverOptions.defaults field z0 0.0 1.0 outputTimes

    /// log p₁(x) per row for `field` and a base log-density: x is integrated from t = 1 back to 0
    /// with the exact divergence, log p₁(x) = log p₀(z(0)) − ∫₀¹ tr ∂v/∂x dt.
    let logDensity (solver: Solver) (field: Dynamics) (baseLogProb: Tensor -> Tensor) (x: Tensor) =
        let z0, logDet, _ = Cnf.integrate solver SolverOptions.defaults TraceMode.Exact field x 1.0 0.0
        baseLogProb z0 + logDet

    /// Draws n samples from a flow-matching model by integrating its field with `solver` (Dopri5,
    /// or RK4 with a fixed number of steps).
    let sample (solver: Solver) (gen: Generator) (n: int) (flow: Flow) =
        Guard.positive (nameof n) n
        let z0 = Distribution.sample flow.Base flow.Base.Params gen n
        (transport solver (field flow) z0 [||]).Final

    /// Draws one sample from p(x | c) per context row c of `ctx` from a conditional model.
    let sampleConditional (solver: Solver) (ctx: Context) (gen: Generator) (flow: Flow) =
        let n = match ctx.Condition with Some c -> c.shape[0] | None -> invalidArg "context" "flow matching: conditional sampling needs a context (one row per sample)"
        let z0 = Distribution.sample flow.Base flow.Base.Params gen n
        (transport solver (conditionalField ctx n flow) z0 [||]).Final

    /// The CFM loss of one data batch for `Train.fit`: x0 from the model's base and t ~ U(0, 1), one
    /// of each per row, drawn from `gen`. A conditional model's batch is [x1 | c], as a conditional
    /// data source batches it, and its field reads c.
    let batchLoss (sigmaMin: float) (p: Params) (gen: Generator) (batch: Tensor) (flow: Flow) =
        let flow = Flow.withParameters p flow
        let layer = cnfLayer flow
        let contextDim = contextDimOf layer
        let dim = layer.Event[0]
        Guard.rows "batch" (dim + contextDim) batch
        let x1 = batch.narrow(1, 0, dim)
        let c = if contextDim = 0 then None else Some(batch.narrow(1, dim, contextDim))
        let n = x1.shape[0]
        let x0 = Distribution.sample flow.Base flow.Base.Params gen n
        let t = gen.uniform([| n; 1 |], dtype = x1.dtype, device = x1.device)
        loss sigmaMin (conditionalVelocity c layer.Params) x0 x1 t

    /// The `Train.fit` objective of conditional flow matching on `source`, with σ_min in [0, 1)
    /// (the width of the path's end around each data point; Lipman et al. use 1e-4 and below).
    /// Validation, if set in the options, scores the held-out NLL by CNF integration.
    let objective (sigmaMin: float) (source: DataSource) =
        Guard.that (nameof sigmaMin) (sigmaMin >= 0.0 && sigmaMin < 1.0) $"must be in [0, 1), got {sigmaMin}"
        Objective.BatchLoss(source, batchLoss sigmaMin)
