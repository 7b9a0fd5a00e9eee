/// How accurate the ODE solvers are, against references computed without them: the fixed-step
/// solvers' orders and the adaptive solvers' tolerances on z' = A z (closed form by MathNet's
/// eigen-decomposition), agreement with MathNet's RK4 on Van der Pol, forward-then-backward round
/// trips, and dense output against solves that stop at the output times.
module Flows.Properties.Ode.SolverAccuracy

open Xunit
open FsCheck.FSharp
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Ode.OdeReference

/// A seed, a dimension 1 to 4, and a direction of integration (false: from 0 to 1; true: from 1 to 0).
let private linearCase =
    gen {
        let! seed = Gens.seed
        let! n = Gen.choose (1, 4)
        let! backward = Gen.elements [ false; true ]
        return seed, n, backward
    }

/// A random stable A, three starts z0 [3; n], the interval, and z at its end in closed form
/// (e^{A(t1 − t0)} applied to each row).
let private linearProblem (seed, n, backward) =
    let g = Draw.generator seed
    let a = stableMatrix g n
    let z0 = Draw.normal g [| 3; n |]
    let t0, t1 = if backward then 1.0, 0.0 else 0.0, 1.0
    a, z0, t0, t1, mapRows (expm a (t1 - t0)) z0

let private solveLinear (solver: Solver) (a, z0, t0, t1, _) =
    Ode.solve solver SolverOptions.defaults (linearDynamics a) z0 t0 t1 [||]

let private errorOf (solver: Solver) problem =
    let _, _, _, _, exact = problem
    maxError exact ((solveLinear solver problem).Final.toArray64())

// The global error is C·h^p + D·h^(p+1) + ..., so halving h from 1/32 to 1/64 shows the order
// p + log2((1 + r·h)/(1 + r·h/2)) ≈ p + r·h/(2 ln 2), with r = D/C of the size of A's spectral
// radius (at most about 3 here): at most about 0.07 off p. Allowing 0.2 covers r up to 9.
let private checkOrder (what: string) (solver: int -> Solver) (p: float) =
    Gens.check 8 linearCase (fun case ->
        let problem = linearProblem case
        let observed = log (errorOf (solver 32) problem / errorOf (solver 64) problem) / log 2.0
        Close.scalar $"{what}: observed order from 32 to 64 steps" { Abs = 0.2; Rel = 0.0 } p observed)

[<Fact>]
let ``halving Euler's step halves its error (order 1)`` () = checkOrder "Euler" Solver.Euler 1.0

[<Fact>]
let ``halving the midpoint rule's step quarters its error (order 2)`` () = checkOrder "Midpoint" Solver.Midpoint 2.0

[<Fact>]
let ``halving Rk4's step divides its error by 16 (order 4)`` () = checkOrder "Rk4" Solver.Rk4 4.0

[<Fact>]
let ``Dopri5 and Tsit5 meet their tolerance on a stable linear system`` () =
    // The error estimate bounds the local error of the embedded 4th-order solution while the 5th-order
    // one is propagated, and A is contractive (eigenvalue real parts ≤ −0.5) over a unit interval, so
    // the global error stays below atol + rtol·|z|; the factor 2 leaves room for the transient growth
    // of a non-normal A. Observed: at most 0.4 of the tolerance.
    Gens.check 6 linearCase (fun (seed, n, _) ->
        let a, z0, t0, t1, exact = linearProblem (seed, n, false)
        for tolerance in [ 1e-3; 1e-6; 1e-9 ] do
            for solver in [ Solver.Dopri5(Tolerances.uniform tolerance); Solver.Tsit5(Tolerances.uniform tolerance) ] do
                let actual = (solveLinear solver (a, z0, t0, t1, exact)).Final.toArray64()
                Close.arrays $"{solver} at tolerance {tolerance}" { Abs = 2.0 * tolerance; Rel = 2.0 * tolerance } exact actual)

/// A start of Van der Pol inside [−2, 2]².
let private vanDerPolStart (seed: int) =
    let g = Draw.generator seed
    let s = (Draw.uniform g -2.0 2.0 [| 2 |]).toArray64()
    s[0], s[1]

let private adaptiveAtNine = [ Solver.Dopri5(Tolerances.uniform 1e-9); Solver.Tsit5(Tolerances.uniform 1e-9) ]

let private muOne = Tensor.scalar (1.0, Dtype.Float64)

let private solveVanDerPol (solver: Solver) (x0: Tensor) (v0: Tensor) t0 t1 (outputTimes: float[]) =
    Ode.solveSystem solver SolverOptions.defaults (vanDerPol muOne) [| x0; v0 |] t0 t1 outputTimes

[<Fact>]
let ``Dopri5 and Tsit5 agree with MathNet's RK4 on Van der Pol`` () =
    // MathNet's RK4 with step 1e-4 is accurate to about 1e-13 here; the adaptive solves at tolerance
    // 1e-9 accumulate local errors over t in [0, 3] on a non-contractive problem: 1e-7 allows 100×
    // the tolerance (observed: a few 1e-9).
    Gens.check 3 Gens.seed (fun seed ->
        let x0, v0 = vanDerPolStart seed
        let rx, rv = vanDerPolByMathNet x0 v0 0.0 3.0 30001
        for solver in adaptiveAtNine do
            let s = solveVanDerPol solver (Tensor.ofArray [| x0 |]) (Tensor.ofArray [| v0 |]) 0.0 3.0 [||]
            Close.arrays $"{solver} against MathNet RK4 from ({x0}, {v0})" { Abs = 1e-7; Rel = 0.0 } [| rx; rv |]
                [| s.Final[0].toScalar(); s.Final[1].toScalar() |])

[<Fact>]
let ``integrating forward then backward returns the start`` () =
    // Each leg is accurate to a few times its tolerance (adaptive, 1e-9) or to h^4 (RK4, h = 0.01);
    // 1e-7 is 100× the tolerance (observed: at most 1e-8).
    Gens.check 4 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let x0, v0 = Draw.uniform g -2.0 2.0 [| 3 |], Draw.uniform g -2.0 2.0 [| 3 |]
        for solver in Solver.Rk4 200 :: adaptiveAtNine do
            let there = solveVanDerPol solver x0 v0 0.0 2.0 [||]
            let back = solveVanDerPol solver there.Final[0] there.Final[1] 2.0 0.0 [||]
            Close.tensors $"{solver}: x after 0 → 2 → 0" { Abs = 1e-7; Rel = 0.0 } x0 back.Final[0]
            Close.tensors $"{solver}: v after 0 → 2 → 0" { Abs = 1e-7; Rel = 0.0 } v0 back.Final[1])

/// A seed, four output times in the interval (sorted from t0 towards t1) and a direction.
let private denseCase =
    gen {
        let! seed = Gens.seed
        let! times = Gen.arrayOfLength 4 (Gen.choose (1, 999) |> Gen.map (fun k -> 2.0 * float k / 1000.0))
        let! backward = Gen.elements [ false; true ]
        let sorted = if backward then Array.sortDescending times else Array.sort times
        return seed, sorted, backward
    }

[<Fact>]
let ``dense output at requested times agrees with solving to those times`` () =
    // Both are within a few tolerances (1e-9) of the true state, the interpolant with the error of a
    // fourth-order polynomial over one accepted step: 1e-7 is 100× the tolerance.
    Gens.check 4 denseCase (fun (seed, times, backward) ->
        let x0, v0 = vanDerPolStart seed
        let t0, t1 = if backward then 2.0, 0.0 else 0.0, 2.0
        let start = [| Tensor.ofArray [| x0 |]; Tensor.ofArray [| v0 |] |]
        for solver in adaptiveAtNine do
            let dense = solveVanDerPol solver start[0] start[1] t0 t1 times
            times
            |> Array.iteri (fun i tau ->
                let direct = solveVanDerPol solver start[0] start[1] t0 tau [||]
                let state (s: Tensor[]) = Array.collect (fun (x: Tensor) -> x.toArray64()) s
                Close.arrays $"{solver}: state at t = {tau} from {t0}" { Abs = 1e-7; Rel = 0.0 } (state direct.Final) (state dense.Outputs[i])))

[<Fact>]
let ``the adaptive dense output is fourth order within a step`` () =
    // One accepted step of size h (tolerance 1e3 accepts it) read at 0.3h and 0.7h: a fourth-order
    // interpolant errs by O(h^5), so halving h from 0.2 to 0.05 divides the error by about 2^5 each
    // time. Dropping or doubling Dopri5's fourth-order term (Shampine's d_i) shows 3.6 to 3.9 here;
    // 4.5 separates the two (observed 5.1 to 5.6 for both pairs).
    Gens.check 4 linearCase (fun case ->
        let a, z0, _, _, _ = linearProblem case
        for solver in [ Solver.Dopri5(Tolerances.uniform 1e3); Solver.Tsit5(Tolerances.uniform 1e3) ] do
            let errorAt (h: float) =
                let options = { SolverOptions.defaults with FirstStep = Some h }
                let s = Ode.solve solver options (linearDynamics a) z0 0.0 h [| 0.3 * h; 0.7 * h |]
                Assert.Equal(1, s.Accepted)
                max (maxError (mapRows (expm a (0.3 * h)) z0) (s.Outputs[0].toArray64())) (maxError (mapRows (expm a (0.7 * h)) z0) (s.Outputs[1].toArray64()))
            for h in [ 0.2; 0.1 ] do
                let observed = log (errorAt h / errorAt (h / 2.0)) / log 2.0
                Assert.True(observed > 4.5, $"{solver}: the dense output's error falls as h^{observed} from h = {h} to {h / 2.0}"))

[<Fact>]
let ``fixed-step outputs on grid points are the states of shorter solves`` () =
    Gens.check 6 linearCase (fun case ->
        let a, z0, t0, t1, _ = linearProblem case
        let at k = t0 + (t1 - t0) * float k / 10.0
        for solver, shorter in [ Solver.Euler 10, Solver.Euler; Solver.Midpoint 10, Solver.Midpoint; Solver.Rk4 10, Solver.Rk4 ] do
            let s = Ode.solve solver SolverOptions.defaults (linearDynamics a) z0 t0 t1 [| at 0; at 3; at 7; at 10 |]
            [ 0; 3; 7; 10 ]
            |> List.iteri (fun i k ->
                let expected = if k = 0 then z0 else (Ode.solve (shorter k) SolverOptions.defaults (linearDynamics a) z0 t0 (at k) [||]).Final
                Close.tensors $"{solver}: output at grid point {k}" Tolerance.float64 expected s.Outputs[i]))

[<Fact>]
let ``fixed-step outputs between grid points follow the closed form`` () =
    // Rk4 with h = 1/64 is accurate to about 1e-8 at the grid points and the cubic Hermite
    // interpolant adds h^4/384·|z''''| ≈ 1e-10 between them; 1e-6 leaves a wide margin.
    Gens.check 6 linearCase (fun case ->
        let a, z0, t0, t1, _ = linearProblem case
        let times = [| 0.1; 0.37; 0.5; 0.99 |] |> Array.map (fun s -> t0 + s * (t1 - t0))
        let s = Ode.solve (Solver.Rk4 64) SolverOptions.defaults (linearDynamics a) z0 t0 t1 times
        times
        |> Array.iteri (fun i tau ->
            Close.arrays $"Rk4 output at t = {tau}" { Abs = 1e-6; Rel = 0.0 } (mapRows (expm a (tau - t0)) z0) (s.Outputs[i].toArray64())))
