/// RNODE's regularisers and STEER: the integrated kinetic energy and Jacobian Frobenius norm against
/// closed forms for a linear field and Gauss–Legendre quadrature along a solved trajectory for an
/// MLP field; the regularised objective's adjoint gradients against backpropagation; STEER's end
/// times in range, T at evaluation, and the objective's NLL equal to the CNF bijector's at that time.
module Flows.Properties.Continuous.RegulariserTests

open Xunit
open FsCheck.FSharp
open MathNet.Numerics.Integration
open Flows
open Flows.Continuous
open Flows.Distributions
open Flows.Nn
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Ode.OdeReference

let private solver = Solver.Dopri5(Tolerances.uniform 1e-10)

// Gauss–Legendre nodes on [t0, t1] in increasing order, with their weights.
let private gaussLegendre (t0: float) (t1: float) (order: int) =
    let rule = GaussLegendreRule(t0, t1, order)
    Array.zip rule.Abscissas rule.Weights |> Array.sortBy fst

let private frobeniusSquared (a: float[,]) = Seq.sum (Seq.cast<float> a |> Seq.map (fun x -> x * x))

[<Fact>]
let ``for a linear field the Jacobian norm integrates to T·‖A‖²_F and the kinetic energy to the quadrature of ‖A e^{At} z0‖²`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, n) ->
        let g = Draw.generator seed
        let a = stableMatrix g n |> Array2D.map (fun x -> 0.5 * x)
        let z0 = Draw.normal g [| 4; n |]
        let eps = Draw.normal g [| 4; n |]
        let endTime = 0.9
        let field (_: Params) (t: Tensor) z = linearDynamics a t z
        let exact = Regularisers.solve solver SolverOptions.defaults CnfGradient.Backprop TraceMode.Exact field Params.empty z0 0.0 endTime
        Close.arrays "∫‖A‖²_F dt" { Abs = 1e-9; Rel = 1e-9 } (Array.create 4 (endTime * frobeniusSquared a)) (exact.Jacobian.toArray64())
        let rows = z0.toArray64()
        let kinetic =
            Array.init 4 (fun r ->
                let start = Tensor.ofArray(rows[r * n .. r * n + n - 1], [| 1; n |])
                gaussLegendre 0.0 endTime 40
                |> Array.sumBy (fun (t, w) ->
                    let velocity = mapRows a (Tensor.ofArray(mapRows (expm a t) start, [| 1; n |]))
                    w * Array.sumBy (fun v -> v * v) velocity))
        Close.arrays "∫‖A z(t)‖² dt" { Abs = 1e-8; Rel = 1e-7 } kinetic (exact.Kinetic.toArray64())
        // Hutchinson: ‖εᵀA‖² is constant along the trajectory
        let estimated = Regularisers.solve solver SolverOptions.defaults CnfGradient.Backprop (TraceMode.Hutchinson eps) field Params.empty z0 0.0 endTime
        let e = eps.toArray64()
        let expected = Array.init 4 (fun r -> endTime * Seq.sum (seq { for j in 0 .. n - 1 -> (Seq.sum (seq { for i in 0 .. n - 1 -> e[r * n + i] * a[i, j] })) ** 2.0 }))
        Close.arrays "∫‖εᵀA‖² dt" { Abs = 1e-9; Rel = 1e-9 } expected (estimated.Jacobian.toArray64())
        // backwards in time from z(T): the same non-negative integrals
        let back = Regularisers.solve solver SolverOptions.defaults CnfGradient.Backprop TraceMode.Exact field Params.empty exact.State endTime 0.0
        Close.tensors "z(0) from z(T)" { Abs = 1e-7; Rel = 1e-7 } z0 back.State
        Close.tensors "the kinetic energy backwards" { Abs = 1e-8; Rel = 1e-7 } exact.Kinetic back.Kinetic)

[<Fact>]
let ``for an MLP field the regularisers equal Gauss–Legendre quadrature of ‖f‖² and ‖∂f/∂z‖²_F along the solved trajectory`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let p = Mlp.create g Dtype.Float64 [ dim + 1; 8; dim ] false |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.5)
        let z0 = Draw.normal g [| 3; dim |]
        let t0, t1 = 0.2, 1.1
        let solved = Regularisers.solve solver SolverOptions.defaults CnfGradient.Backprop TraceMode.Exact Cnf.dynamics p z0 t0 t1
        let nodes = gaussLegendre t0 t1 24
        let path = Ode.solve solver SolverOptions.defaults (Cnf.dynamics p) z0 t0 t1 (Array.map fst nodes)
        let kinetic = Array.zeroCreate 3
        let frobenius = Array.zeroCreate 3
        nodes |> Array.iteri (fun k (t, w) ->
            let f = Cnf.dynamics p (Tensor.scalar(t, Dtype.Float64))
            let velocity = (f path.Outputs[k]).toArray64()
            let jacobians = (Ad.batchJacobian f path.Outputs[k]).toArray64()
            for r in 0 .. 2 do
                kinetic[r] <- kinetic[r] + w * Array.sumBy (fun v -> v * v) velocity[r * dim .. r * dim + dim - 1]
                frobenius[r] <- frobenius[r] + w * Array.sumBy (fun v -> v * v) jacobians[r * dim * dim .. (r + 1) * dim * dim - 1])
        Close.tensors "the state" { Abs = 1e-8; Rel = 1e-8 } path.Final solved.State
        Close.arrays "∫‖f‖² dt" { Abs = 1e-7; Rel = 1e-7 } kinetic (solved.Kinetic.toArray64())
        Close.arrays "∫‖∂f/∂z‖²_F dt" { Abs = 1e-7; Rel = 1e-7 } frobenius (solved.Jacobian.toArray64()))

[<Fact>]
let ``the regularised objective has the same gradients by the adjoint as by backpropagation`` () =
    Gens.check 1 (Gen.zip Gens.seed (Gen.choose (1, 2))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let p = Mlp.create g Dtype.Float64 [ dim + 1; 8; dim ] false |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.3)
        let x = Draw.normal g [| 4; dim |]
        let weights = { Kinetic = 0.7; Jacobian = 0.3 }
        let baseDistribution = Distribution.standardNormal [| dim |] Dtype.Float64
        for mode in [ TraceMode.Exact; TraceMode.Hutchinson(Draw.normal g [| 4; dim |]) ] do
            let loss gradient (values: Tensor[]) =
                (Regularisers.objective solver SolverOptions.defaults gradient mode weights baseDistribution Cnf.dynamics (p.WithValues values) 0.8 x).Loss
            Close.scalar "the same loss" Tolerance.float64 ((loss CnfGradient.Backprop p.Values).toScalar()) ((loss CnfGradient.Adjoint p.Values).toScalar())
            Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient of {p.Names[i]}" { Abs = 1e-6; Rel = 1e-6 } e a)
                (Ad.gradN (loss CnfGradient.Backprop) p.Values) (Ad.gradN (loss CnfGradient.Adjoint) p.Values))

[<Fact>]
let ``STEER draws end times uniformly inside (T − b, T + b) and evaluation uses T`` () =
    Gens.check 5 (Gen.zip Gens.seed (Gen.choose (1, 9))) (fun (seed, tenths) ->
        let endTime, halfWidth = 1.0 + float seed % 3.0, 0.1 * float tenths
        let horizon = Horizon.Steer(endTime, halfWidth)
        let g = Draw.generator seed
        let draws = Array.init 4000 (fun _ -> Horizon.draw g horizon)
        for tau in draws do
            if not (tau > endTime - halfWidth && tau < endTime + halfWidth) then failwith $"end time {tau} outside ({endTime - halfWidth}, {endTime + halfWidth})"
        // U(T − b, T + b): mean T, variance b²/3
        let se = halfWidth / sqrt (3.0 * 4000.0)
        Close.scalar "mean end time" { Abs = 4.0 * se; Rel = 0.0 } endTime (Array.average draws)
        Close.scalar "variance" { Abs = 0.0; Rel = 0.1 } (halfWidth * halfWidth / 3.0) (Array.averageBy (fun t -> (t - endTime) ** 2.0) draws)
        Close.scalar "evaluation" { Abs = 0.0; Rel = 0.0 } endTime (Horizon.evaluation horizon)
        Close.scalar "a fixed horizon" { Abs = 0.0; Rel = 0.0 } endTime (Horizon.draw g (Horizon.Fixed endTime)))

[<Fact>]
let ``a horizon with b ≥ T is rejected with a clear error`` () =
    let error = Assert.ThrowsAny<System.ArgumentException>(fun () -> Horizon.draw (Generator 1UL) (Horizon.Steer(1.0, 1.0)) |> ignore)
    Assert.Contains("half-width", error.Message)

[<Fact>]
let ``the unregularised objective at a drawn end time is the CNF bijector's NLL with that end time`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let tau = Horizon.draw g (Horizon.Steer(1.0, 0.5))
        let cnf = Cnf.createWith { Cnf.defaults with Hidden = [ 8 ]; EndTime = tau; Tolerance = 1e-10 } g Dtype.Float64 dim |> Entry.perturb g 0.3
        let baseDistribution = Distribution.standardNormal [| dim |] Dtype.Float64
        let x = Draw.normal g [| 5; dim |]
        let expected = -((Flow.logProb Context.none x (Flow.create baseDistribution [ cnf ])).mean().toScalar())
        let loss = Regularisers.objective solver SolverOptions.defaults CnfGradient.Backprop TraceMode.Exact { Kinetic = 0.0; Jacobian = 0.0 } baseDistribution Cnf.dynamics cnf.Params tau x
        Close.scalar "NLL" { Abs = 1e-9; Rel = 1e-9 } expected (loss.Nll.toScalar())
        Close.scalar "loss = NLL with zero weights" Tolerance.float64 (loss.Nll.toScalar()) (loss.Loss.toScalar()))
