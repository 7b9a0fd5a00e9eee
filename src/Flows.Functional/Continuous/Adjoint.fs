namespace Flows.Continuous

open Flows.Ode
open Flows.Tensors
open Flows.Tensors.Backend

/// Dynamics with their parameters passed explicitly: θ, t (rank 0), the state tensors → one
/// derivative per state tensor. The adjoint method differentiates with respect to θ.
type ParameterisedDynamics = Tensor[] -> Tensor -> Tensor[] -> Tensor[]

/// Which solve of a differentiated neural ODE a cost report is about.
[<RequireQualifiedAccess>]
type SolvePass =
    /// The solve that maps the state (kept out of the graph under the adjoint method).
    | Forward
    /// The adjoint method's solve of [z, a, a_θ] back in time, run when gradients are taken.
    | Backward

/// Neural ODE solves differentiated by the adjoint method (Chen et al. 2018, Algorithm 1; document
/// 002): the forward solve keeps no graph, and the backward integrates the augmented state
/// [z, a, a_θ] from t1 back to t0 with dz/dt = f, da/dt = −aᵀ∂f/∂z, da_θ/dt = −aᵀ∂f/∂θ, starting
/// from [z(t1), ∂L/∂z(t1), 0]. Memory is constant in the number of steps; the gradients agree with
/// backpropagation through the solver to within the solver's tolerance, not to rounding.
[<RequireQualifiedAccess>]
module Adjoint =

    // The custom-op interface is raw; the solver works on tensors: both views share the storage.
    let private ofRaw (raw: RawTensor) : Tensor = Tensor.ofRaw raw

    let private toRaw (t: Tensor) : RawTensor = t.noDiff().raw

    /// `solveSystem` that hands each solve's `Solution` to `observe` (for NFE counts): the forward
    /// solve when it runs, the backward solve when gradients are taken. The solves are unchanged.
    let solveSystemObserved (observe: SolvePass -> Solution<Tensor[]> -> unit) (solver: Solver) (options: SolverOptions) (dynamics: ParameterisedDynamics) (parameters: Tensor[]) (y0: Tensor[]) (t0: float) (t1: float) : Tensor[] =
        let n = y0.Length
        if n = 0 then invalidArg (nameof y0) "Adjoint.solveSystem: the state needs at least one tensor"
        let forward (raws: RawTensor[]) =
            let xs = raws |> Array.map ofRaw
            let solution = Ode.solveSystem solver options (dynamics xs[n..]) xs[.. n - 1] t0 t1 [||]
            observe SolvePass.Forward solution
            solution.Final |> Array.map toRaw
        let backward (inputs: Tensor[]) (outputs: Tensor[]) (adjoints: Tensor[]) =
            let theta = inputs[n..]
            let augmented : SystemDynamics =
                fun t state ->
                    let y, a = state[.. n - 1], state[n .. 2 * n - 1]
                    let dy, pullback = Ad.vjpN (fun xs -> dynamics xs[n..] t xs[.. n - 1]) (Array.append y theta)
                    // the pullback's adjoints of y and θ, negated: the adjoint runs backwards
                    Array.append dy (pullback a |> Array.map (fun g -> -g))
            let start = Array.concat [ outputs; adjoints; theta |> Array.map (fun p -> p.zerosLike()) ]
            let solution = Ode.solveSystem solver options augmented start t1 t0 [||]
            observe SolvePass.Backward solution
            solution.Final[n..]
        Tensor.custom(Array.append y0 parameters, forward, backward)

    /// Solves dy/dt = f(θ, t, y) for a state of several tensors from t0 to t1 and returns the state
    /// at t1; gradients with respect to y0 and θ come from the adjoint solve, which uses the same
    /// solver and options (a seminorm in `ErrorNorm.Only` refers to the augmented state's indices:
    /// the n state tensors, then n adjoints, then one per parameter).
    let solveSystem (solver: Solver) (options: SolverOptions) (dynamics: ParameterisedDynamics) (parameters: Tensor[]) (y0: Tensor[]) (t0: float) (t1: float) : Tensor[] =
        solveSystemObserved (fun _ _ -> ()) solver options dynamics parameters y0 t0 t1

    /// `solveSystem` for one state tensor.
    let solve (solver: Solver) (options: SolverOptions) (dynamics: Tensor[] -> Tensor -> Tensor -> Tensor) (parameters: Tensor[]) (y0: Tensor) (t0: float) (t1: float) : Tensor =
        (solveSystem solver options (fun theta t y -> [| dynamics theta t y[0] |]) parameters [| y0 |] t0 t1)[0]
