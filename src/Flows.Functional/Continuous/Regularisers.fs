namespace Flows.Continuous

open Flows
open Flows.Distributions
open Flows.Ode
open Flows.Tensors

/// A regularised CNF solve: the state, its log-density change and the RNODE integrals, per row.
type RegularisedSolve =
    { /// z(t1), [B; D].
      State: Tensor
      /// ∫_{t0}^{t1} tr(∂f/∂z) dt = log|det ∂z(t1)/∂z(t0)|, [B].
      LogDet: Tensor
      /// The kinetic energy ∫ ‖f‖² dt over the interval (non-negative in either direction), [B].
      Kinetic: Tensor
      /// ∫ ‖∂f/∂z‖_F² dt (exact trace) or its Hutchinson estimate ∫ ‖εᵀ ∂f/∂z‖² dt (non-negative), [B].
      Jacobian: Tensor }

/// The weights of RNODE's training objective NLL + λ_K·K + λ_J·J.
type Regularisation =
    { /// λ_K, the weight of the kinetic energy.
      Kinetic: float
      /// λ_J, the weight of the Jacobian Frobenius norm.
      Jacobian: float }

/// A regularised objective's value and its parts (means over the rows).
type RegularisedLoss =
    { /// NLL + λ_K·K + λ_J·J, differentiable.
      Loss: Tensor
      /// The mean negative log-likelihood in nats.
      Nll: Tensor
      /// The mean kinetic energy K.
      Kinetic: Tensor
      /// The mean Jacobian Frobenius norm J.
      Jacobian: Tensor }

/// RNODE's regularisers (Finlay et al. 2020, "How to train your neural ODE"): the
/// kinetic energy ∫‖f‖² dt and the Jacobian Frobenius norm ∫‖∇f‖_F² dt integrated as two more state
/// components next to z and the log-density change, in the same solve. The Hutchinson form reuses
/// the trace's VJP: one VJP with cotangent ε gives εᵀ∇f, whose product with ε is the trace estimate
/// and whose squared norm is the Frobenius estimate.
[<RequireQualifiedAccess>]
module Regularisers =

    let private rows (z: Tensor) (y: Tensor) =
        if z.dim <> 2 then invalidArg "z" $"Regularisers: expected rows [batch; dim], got {Shape.show z.shape}"
        if y.shape <> z.shape then invalidArg "f" $"Regularisers: the field must keep the shape {Shape.show z.shape}, got {Shape.show y.shape}"

    /// f(z), the divergence tr(∂f/∂z) and the squared Frobenius norm of ∂f/∂z per row ([B] each):
    /// exactly from D VJPs (the rows of the Jacobian), or Hutchinson's εᵀ(∂f/∂z)ε and ‖εᵀ∂f/∂z‖²
    /// from one VJP with the probe ε (both unbiased, E[εεᵀ] = I).
    let divergenceAndFrobenius (mode: TraceMode) (f: Tensor -> Tensor) (z: Tensor) : Tensor * Tensor * Tensor =
        let y, pullback = Ad.vjp f z
        rows z y
        match mode with
        | TraceMode.Exact ->
            let d = z.shape[1]
            let identity = Tensor.eye(d, y.dtype, y.device)
            let jacobianRows = Array.init d (fun i -> pullback (identity.narrow(0, i, 1).expand y.shape))
            let trace = Tensor.cat(jacobianRows |> Array.mapi (fun i r -> r.narrow(1, i, 1)), 1).sum(1)
            let frobenius = jacobianRows |> Array.map (fun r -> r.square().sum(1)) |> Array.reduce (+)
            y, trace, frobenius
        | TraceMode.Hutchinson noise ->
            if noise.shape <> z.shape then
                invalidArg (nameof noise) $"Regularisers: the probe must have the rows' shape {Shape.show z.shape}, got {Shape.show noise.shape}"
            let v = pullback noise
            y, (v * noise).sum(1), v.square().sum(1)

    /// The system [z; log-det; K; J] for the field f(t, z), integrated from t0 to t1: the two
    /// regularisers' rates take the sign of t1 − t0 so that both integrals come out non-negative.
    let system (mode: TraceMode) (f: Tensor -> Tensor -> Tensor) (t0: float) (t1: float) : SystemDynamics =
        let direction = if t1 >= t0 then 1.0 else -1.0
        fun t state ->
            let dz, divergence, frobenius = divergenceAndFrobenius mode (f t) state[0]
            [| dz; divergence; dz.square().sum(1) * direction; frobenius * direction |]

    let private start (z0: Tensor) =
        let zero = Bijector.zeroLogDet z0
        [| z0; zero; zero; zero |]

    let private result (final: Tensor[]) =
        { State = final[0]; LogDet = final[1]; Kinetic = final[2]; Jacobian = final[3] }

    /// `solve` that hands each solve's cost to `observe` (for NFE counts; `Cnf.observer` makes one
    /// from a `CnfSolve` callback).
    let solveObserved (observe: SolvePass -> Solution<Tensor[]> -> unit) (solver: Solver) (options: SolverOptions) (gradient: CnfGradient) (mode: TraceMode) (field: ParameterisedField) (p: Params) (z0: Tensor) (t0: float) (t1: float) : RegularisedSolve =
        if z0.dim <> 2 then invalidArg (nameof z0) $"Regularisers.solve: expected rows [batch; dim], got {Shape.show z0.shape}"
        let regularised (q: Params) = system mode (field q) t0 t1
        result (Cnf.solveSystem gradient observe solver options regularised p (start z0) t0 t1)

    /// Solves the regularised system for rows z0 [B; D] from t0 to t1 with the field at parameters
    /// `p`, differentiated by backpropagation through the solver or by the adjoint method.
    let solve (solver: Solver) (options: SolverOptions) (gradient: CnfGradient) (mode: TraceMode) (field: ParameterisedField) (p: Params) (z0: Tensor) (t0: float) (t1: float) : RegularisedSolve =
        solveObserved (fun _ _ -> ()) solver options gradient mode field p z0 t0 t1

    /// RNODE's loss from a solve of data rows back to the base: the mean NLL under
    /// `baseDistribution` plus λ_K·K + λ_J·J, with its parts.
    let lossOf (weights: Regularisation) (baseDistribution: Distribution) (solved: RegularisedSolve) : RegularisedLoss =
        let nll = -((baseDistribution.LogProb baseDistribution.Params solved.State + solved.LogDet).mean())
        let kinetic, jacobian = solved.Kinetic.mean(), solved.Jacobian.mean()
        { Loss = nll + kinetic * weights.Kinetic + jacobian * weights.Jacobian
          Nll = nll
          Kinetic = kinetic
          Jacobian = jacobian }

    /// RNODE's objective for a CNF over [0, endTime] with base distribution `baseDistribution`:
    /// data rows x are integrated from endTime back to 0, and the loss is the mean NLL plus
    /// λ_K·K + λ_J·J. For STEER, draw `endTime` from a `Horizon` at every step.
    let objective (solver: Solver) (options: SolverOptions) (gradient: CnfGradient) (mode: TraceMode) (weights: Regularisation) (baseDistribution: Distribution) (field: ParameterisedField) (p: Params) (endTime: float) (x: Tensor) : RegularisedLoss =
        lossOf weights baseDistribution (solve solver options gradient mode field p x endTime 0.0)
