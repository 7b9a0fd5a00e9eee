namespace Flows.Continuous

open Flows
open Flows.Nn
open Flows.Ode
open Flows.Tensors

/// Augmented neural ODEs (Dupont, Doucet & Teh 2019): the rows x [B; D] get
/// `extra` zero columns, the ODE runs in D + extra dimensions, and the output keeps the first D.
/// Trajectories of an ODE cannot cross, so a 1-D ODE cannot map x ↦ −x; in the larger space they
/// can pass around each other, and the projection can reflect.
[<RequireQualifiedAccess>]
module Augmented =

    /// [x; 0]: `extra` zero columns appended to rows x [B; D].
    let augment (extra: int) (x: Tensor) =
        Guard.that (nameof extra) (extra >= 0) $"must be at least 0, got {extra}"
        if x.dim <> 2 then invalidArg (nameof x) $"Augmented.augment: expected rows [batch; dim], got {Shape.show x.shape}"
        if extra = 0 then x else Tensor.cat([| x; Tensor.zeros([| x.shape[0]; extra |], x.dtype, x.device) |], 1)

    /// The first `dim` columns of augmented rows.
    let project (dim: int) (z: Tensor) = z.narrow(1, 0, dim)

    /// Parameters of an MLP field on [z; a; t] for rows of `dim` with `extra` augmented dimensions.
    let create (gen: Generator) (dtype: Dtype) (dim: int) (extra: int) (hidden: int list) : Params =
        Guard.positive (nameof dim) dim
        Guard.that (nameof extra) (extra >= 0) $"must be at least 0, got {extra}"
        Mlp.create gen dtype ([ dim + extra + 1 ] @ hidden @ [ dim + extra ]) false

    /// The whole augmented solution from t0 to t1 for rows x [B; D]: the state [x; 0] at t0 moved by
    /// `field` (on D + extra columns), at t1 and at each output time.
    let solve (solver: Solver) (options: SolverOptions) (extra: int) (field: Dynamics) (x: Tensor) (t0: float) (t1: float) (outputTimes: float[]) =
        Ode.solve solver options field (augment extra x) t0 t1 outputTimes

    /// x ↦ the first D columns of φ_{t0→t1}([x; 0]).
    let apply (solver: Solver) (options: SolverOptions) (extra: int) (field: Dynamics) (x: Tensor) (t0: float) (t1: float) =
        project x.shape[1] (solve solver options extra field x t0 t1 [||]).Final
