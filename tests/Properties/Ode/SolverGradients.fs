/// Gradients by backpropagation through the solvers, in float64: against central differences of
/// the solve on Van der Pol (start and μ, final state and a dense output), and against the closed
/// form of z' = θ·A z, whose solution e^{θAT} z0 has known derivatives in z0 and θ.
module Flows.Properties.Ode.SolverGradients

open Xunit
open FsCheck.FSharp
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Ode.OdeReference

// Tight tolerances keep the adaptive solves' dependence on the step sizes, which backpropagation
// treats as constants and central differences see, near 1e-10: far below the difference tolerance.
let private solvers =
    [ Solver.Euler 20
      Solver.Midpoint 20
      Solver.Rk4 20
      Solver.Dopri5(Tolerances.uniform 1e-10)
      Solver.Tsit5(Tolerances.uniform 1e-10) ]

[<Fact>]
let ``gradients through a solve match central differences in the start and a parameter of the dynamics`` () =
    Gens.check 3 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let x0, v0 = Draw.uniform g -2.0 2.0 [| 2 |], Draw.uniform g -2.0 2.0 [| 2 |]
        let mu = Draw.uniform g 0.5 1.5 [||]
        for solver in solvers do
            // [x0; v0; μ] ↦ [x(1); v(1); x(0.37)], the last from the dense output or the Hermite interpolant
            let f (xs: Tensor[]) =
                let s = Ode.solveSystem solver SolverOptions.defaults (vanDerPol xs[2]) [| xs[0]; xs[1] |] 0.0 1.0 [| 0.37 |]
                [| s.Final[0]; s.Final[1]; s.Outputs[0][0] |]
            FiniteDifferences.checkVjp $"{solver} on Van der Pol" seed f [| x0; v0; mu |])

[<Fact>]
let ``gradients through a solve backward in time match central differences`` () =
    Gens.check 2 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let a = stableMatrix g 3
        let z1 = Draw.normal g [| 2; 3 |]
        for solver in [ Solver.Rk4 20; Solver.Tsit5(Tolerances.uniform 1e-10) ] do
            let f (xs: Tensor[]) = [| (Ode.solve solver SolverOptions.defaults (linearDynamics a) xs[0] 1.0 0.0 [||]).Final.tanh() |]
            FiniteDifferences.checkVjp $"{solver} from t = 1 to 0" seed f [| z1 |])

[<Fact>]
let ``gradients through a solve of z' = θ·A z match the closed form`` () =
    // L = Σ c ⊙ z(T) with z(T) = M z0 row-wise, M = e^{θAT}: ∂L/∂z0 = c·M (row-wise Mᵀc) and
    // ∂L/∂θ = Σ_rows cᵀ·T·A·M·z0. The solves are accurate to about 1e-9 (Rk4, h = 1/200) and the
    // tolerance 1e-10 (Dopri5); 1e-7 allows for the condition of the eigenvectors.
    Gens.check 4 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, n) ->
        let g = Draw.generator seed
        let a = stableMatrix g n
        let z0 = Draw.normal g [| 3; n |]
        let c = Draw.normal g [| 3; n |]
        let theta = Draw.uniform g 0.5 1.5 [||]
        let horizon = 1.0
        let m = expm (Array2D.map (fun x -> x * theta.toScalar()) a) horizon
        let mT = Array2D.init n n (fun i j -> m[j, i])
        let am = Array2D.init n n (fun i j -> horizon * Seq.sum (seq { for k in 0 .. n - 1 -> a[i, k] * m[k, j] }))
        let expectedZ0 = mapRows mT c
        let expectedTheta = FiniteDifferences.inner (c.toArray64()) (mapRows am z0)
        let at = Tensor.ofArray2D(a).transpose()
        for solver in [ Solver.Rk4 200; Solver.Dopri5(Tolerances.uniform 1e-10); Solver.Tsit5(Tolerances.uniform 1e-10) ] do
            let loss (xs: Tensor[]) =
                let s = Ode.solve solver SolverOptions.defaults (fun _ z -> z.matmul at * xs[1]) xs[0] 0.0 horizon [||]
                (c * s.Final).sum()
            let grads = Ad.gradN loss [| z0; theta |]
            Close.arrays $"{solver}: ∂L/∂z0" { Abs = 1e-7; Rel = 1e-7 } expectedZ0 (grads[0].toArray64())
            Close.scalar $"{solver}: ∂L/∂θ" { Abs = 1e-7; Rel = 1e-7 } expectedTheta (grads[1].toScalar()))
