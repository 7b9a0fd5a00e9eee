/// Independent references for the ODE solver laws, computed without the solvers under test: the
/// closed form of z' = A z by MathNet's complex eigen-decomposition, MathNet's RK4 on Van der Pol,
/// and random stable matrices.
module Flows.Properties.Ode.OdeReference

open System.Numerics
open MathNet.Numerics.LinearAlgebra
open Flows.Ode
open Flows.Tensors
open Flows.Properties.Support

/// A random n × n matrix whose eigenvalues have real parts in about [−3, −0.5]: Gaussian entries
/// over √n (spectrum near the unit disc), shifted left until the rightmost eigenvalue is at −0.5.
let stableMatrix (g: Generator) (n: int) : float[,] =
    let m = (Draw.normal g [| n; n |]).toArray64()
    let a = Array2D.init n n (fun i j -> m[i * n + j] / sqrt (float n))
    let abscissa = Matrix<float>.Build.DenseOfArray(a).Evd().EigenValues |> Seq.map _.Real |> Seq.max
    Array2D.init n n (fun i j -> a[i, j] - (if i = j then abscissa + 0.5 else 0.0))

/// e^{A t} = V·diag(e^{λt})·V⁻¹ from MathNet's complex eigen-decomposition (random matrices are
/// diagonalisable with probability one); fails if the result is not real to 1e-10.
let expm (a: float[,]) (t: float) : float[,] =
    let n = Array2D.length1 a
    let evd = Matrix<Complex>.Build.DenseOfArray(Array2D.map (fun x -> Complex(x, 0.0)) a).Evd()
    let v = evd.EigenVectors
    let d = Matrix<Complex>.Build.DiagonalOfDiagonalVector(evd.EigenValues.Map(fun l -> Complex.Exp(l * Complex(t, 0.0))))
    let e = v * d * v.Inverse()
    Array2D.init n n (fun i j ->
        if abs e[i, j].Imaginary > 1e-10 then failwith $"expm: imaginary part {e[i, j].Imaginary} at [{i}, {j}]"
        e[i, j].Real)

/// Rows z [B; n] times Mᵀ: each row mapped by M, in plain float64.
let mapRows (m: float[,]) (z: Tensor) : float[] =
    let n = Array2D.length1 m
    let x = z.toArray64()
    Array.init x.Length (fun k ->
        let row, i = k / n, k % n
        Seq.sum (seq { for j in 0 .. n - 1 -> m[i, j] * x[row * n + j] }))

/// The linear dynamics z' = A z on rows [B; n], as tensor ops (the solvers' input).
let linearDynamics (a: float[,]) : Dynamics =
    let at = Tensor.ofArray2D(a).transpose()
    fun _ z -> z.matmul at

/// Van der Pol, x'' = μ(1 − x²)x' − x, as the system [x; v] of two tensors of any shape.
let vanDerPol (mu: Tensor) : SystemDynamics =
    fun _ s -> [| s[1]; mu * (1.0 - s[0].square()) * s[1] - s[0] |]

/// Van der Pol with μ = 1 from (x0, v0) over [t0, t1] by MathNet's fourth-order Runge–Kutta with
/// `points` grid points (its step is (t1 − t0)/(points − 1)); the state at t1.
let vanDerPolByMathNet (x0: float) (v0: float) (t0: float) (t1: float) (points: int) =
    let f = System.Func<float, Vector<float>, Vector<float>>(fun _ s -> Vector<float>.Build.DenseOfArray [| s[1]; (1.0 - s[0] * s[0]) * s[1] - s[0] |])
    let path = MathNet.Numerics.OdeSolvers.RungeKutta.FourthOrder(Vector<float>.Build.DenseOfArray [| x0; v0 |], t0, t1, points, f)
    path[points - 1][0], path[points - 1][1]

/// The largest |actual − expected| over the elements.
let maxError (expected: float[]) (actual: float[]) = Array.fold2 (fun m e a -> max m (abs (a - e))) 0.0 expected actual

/// Runs `solve` and returns the OdeFailure it raises (failing if it returns).
let failureOf (solve: unit -> 'T) : OdeFailure * string =
    try
        solve () |> ignore
        failwith "expected an OdeException, the solve returned"
    with :? OdeException as e -> e.Failure, e.Message
