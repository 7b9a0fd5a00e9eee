namespace Flows.Continuous

open Flows
open Flows.Ode
open Flows.Tensors

/// Dynamics whose parameters are read from a `Params`: (parameters, t rank 0, z [B; D]) → dz/dt.
type ParameterisedField = Params -> Tensor -> Tensor -> Tensor

/// The two sides of a CNF bijector for any parameterised field: what `Cnf` does for its MLP on
/// [z; t], for the other dynamics (hypernetwork, augmented) that reuse its solve.
[<RequireQualifiedAccess>]
module ContinuousMap =

    /// The probe mode of one solve: a fresh Hutchinson probe from the trace's generator per call.
    let traceMode (trace: CnfTrace) (x: Tensor) =
        match trace with
        | CnfTrace.Exact -> TraceMode.Exact
        | CnfTrace.Hutchinson(noise, gen) -> TraceMode.Hutchinson(Trace.probe noise gen x)

    /// Integrates rows x under dz/dt = field p t z from t0 to t1 with the divergence (Dopri5 at
    /// `tolerance`, as `Cnf.solverFor`), differentiated as `gradient` says: the map and its log-det.
    let create (trace: CnfTrace) (gradient: CnfGradient) (tolerance: float) (field: ParameterisedField) (t0: float) (t1: float) : MapWithLogDet =
        fun p _ x ->
            let mode = traceMode trace x
            let solver = Cnf.solverFor x.dtype tolerance
            match gradient with
            | CnfGradient.Backprop ->
                let z, logDet, _ = Cnf.integrate solver SolverOptions.defaults mode (field p) x t0 t1
                z, logDet
            | CnfGradient.Adjoint ->
                let system (theta: Tensor[]) t (state: Tensor[]) =
                    let dz, divergence = Trace.divergence mode (field (p.WithValues theta) t) state[0]
                    [| dz; divergence |]
                let final = Adjoint.solveSystem solver SolverOptions.defaults system p.Values [| x; Bijector.zeroLogDet x |] t0 t1
                final[0], final[1]
