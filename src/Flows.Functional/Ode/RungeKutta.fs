namespace Flows.Ode

open Flows.Tensors

/// An explicit Runge–Kutta method: stage i is evaluated at t + C[i]·h on
/// y + h·Σ_j A[i][j]·k_j (A[i] holds j < i), and the step is y + h·Σ_i B[i]·k_i.
type Tableau =
    { /// The method's name, for messages.
      Name: string
      /// The order of the propagated solution.
      Order: int
      /// The nodes c_i (c_1 = 0).
      C: float[]
      /// Row i holds a_ij for j < i (row 1 is empty).
      A: float[][]
      /// The weights b_i of the step.
      B: float[] }

/// Arithmetic on states (arrays of tensors) and the stages of an explicit Runge–Kutta step. Every
/// operation on the state is a tensor op, so a solve is differentiable by backpropagation.
[<RequireQualifiedAccess>]
module RungeKutta =

    /// Σ_i c_i·x_i over each tensor of the state, skipping zero coefficients (at least one must
    /// remain); a coefficient of 1 on the first term costs no multiplication.
    let linear (terms: (float * Tensor[]) list) : Tensor[] =
        match terms |> List.filter (fun (c, _) -> c <> 0.0) with
        | [] -> invalidArg (nameof terms) "needs at least one non-zero coefficient"
        | (c0, x0) :: rest ->
            x0
            |> Array.mapi (fun i first ->
                let start = if c0 = 1.0 then first else first * c0
                rest |> List.fold (fun (acc: Tensor) (c, x) -> acc + x[i] * c) start)

    /// y + h·Σ_i w_i·k_i.
    let combine (y: Tensor[]) (h: float) (weights: float[]) (ks: Tensor[][]) : Tensor[] =
        linear ((1.0, y) :: [ for i in 0 .. weights.Length - 1 -> h * weights[i], ks[i] ])

    /// h·Σ_i w_i·k_i (no base), for error estimates.
    let increment (h: float) (weights: float[]) (ks: Tensor[][]) : Tensor[] =
        linear [ for i in 0 .. weights.Length - 1 -> h * weights[i], ks[i] ]

    /// The time as a rank-0 constant of the state's dtype and device.
    let time (state: Tensor[]) (t: float) : Tensor = state[0].noDiff().scalarLike t

    /// True when every element of every tensor is finite (read on detached values).
    let allFinite (state: Tensor[]) =
        state |> Array.forall (fun x -> let x = x.noDiff() in (x.isnan() + x.isinf()).sum().toScalar() = 0.0)

    /// The stages k_1..k_s of one step of size h (signed) from (t, y), given k_1 = f(t, y), which
    /// the caller has already (FSAL, Hermite output, the first-step rule).
    let stages (tableau: Tableau) (f: float -> Tensor[] -> Tensor[]) (t: float) (h: float) (y: Tensor[]) (k1: Tensor[]) : Tensor[][] =
        let ks = Array.zeroCreate tableau.C.Length
        ks[0] <- k1
        for i in 1 .. tableau.C.Length - 1 do
            ks[i] <- f (t + tableau.C[i] * h) (combine y h tableau.A[i] ks)
        ks

    /// The cubic Hermite interpolant between (y0, f0) and (y1, f1) over a step of size h, at θ in [0, 1].
    let hermite (y0: Tensor[]) (f0: Tensor[]) (y1: Tensor[]) (f1: Tensor[]) (h: float) (theta: float) : Tensor[] =
        let t2, t3 = theta * theta, theta * theta * theta
        linear
            [ 2.0 * t3 - 3.0 * t2 + 1.0, y0
              -2.0 * t3 + 3.0 * t2, y1
              h * (t3 - 2.0 * t2 + theta), f0
              h * (t3 - t2), f1 ]
