/// Continuous normalising flows: the integrated log-density change against the closed form of a
/// linear field, the exact divergence against the autodiff Jacobian's trace, and Hutchinson's
/// estimator against the exact trace (unbiased: the mean of many probes within a few standard errors).
module Flows.Properties.Continuous.CnfTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Continuous
open Flows.Nn
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Ode.OdeReference

let private trace (a: float[,]) = Seq.sum (seq { for i in 0 .. Array2D.length1 a - 1 -> a[i, i] })

// A random small MLP field on [z; t] with tanh, moved away from its initial parameters.
let private mlpField (g: Generator) (dim: int) =
    let p = Mlp.create g Dtype.Float64 [ dim + 1; 8; 8; dim ] false |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.5)
    Cnf.dynamics p

[<Fact>]
let ``the CNF log-density change of a linear field equals T times its trace and the map is e^{TA}`` () =
    Gens.check 4 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, n) ->
        let g = Draw.generator seed
        let a = stableMatrix g n |> Array2D.map (fun x -> 0.5 * x)
        let z0 = Draw.normal g [| 5; n |]
        let endTime = 1.3
        for mode in [ TraceMode.Exact; TraceMode.Hutchinson(Draw.normal g [| 5; n |]) ] do
            let solver = Solver.Dopri5(Tolerances.uniform 1e-10)
            let z1, logDet, _ = Cnf.integrate solver SolverOptions.defaults TraceMode.Exact (linearDynamics a) z0 0.0 endTime
            Close.arrays $"z(T) for n = {n}" { Abs = 1e-7; Rel = 1e-7 } (mapRows (expm a endTime) z0) (z1.toArray64())
            Close.arrays "log-det" { Abs = 1e-8; Rel = 1e-8 } (Array.create 5 (endTime * trace a)) (logDet.toArray64())
            // backward in time: the inverse map and minus the log-det
            let back, backLogDet, _ = Cnf.integrate solver SolverOptions.defaults mode (linearDynamics a) z1 endTime 0.0
            Close.tensors "z(0) from z(T)" { Abs = 1e-7; Rel = 1e-7 } z0 back
            match mode with
            | TraceMode.Exact -> Close.arrays "backward log-det" { Abs = 1e-8; Rel = 1e-8 } (Array.create 5 (-endTime * trace a)) (backLogDet.toArray64())
            | TraceMode.Hutchinson _ -> ())

[<Fact>]
let ``Hutchinson's estimate of a linear field's trace is εᵀAε, integrated exactly`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, n) ->
        let g = Draw.generator seed
        let a = stableMatrix g n
        let z0, eps = Draw.normal g [| 6; n |], Draw.normal g [| 6; n |]
        let _, logDet, _ = Cnf.integrate (Solver.Rk4 10) SolverOptions.defaults (TraceMode.Hutchinson eps) (linearDynamics a) z0 0.0 0.7
        let e = eps.toArray64()
        let expected = Array.init 6 (fun r -> 0.7 * Seq.sum (seq { for i in 0 .. n - 1 do for j in 0 .. n - 1 -> e[r * n + i] * a[i, j] * e[r * n + j] }))
        Close.arrays "∫ εᵀAε" { Abs = 1e-10; Rel = 1e-9 } expected (logDet.toArray64()))

[<Fact>]
let ``the exact divergence equals the trace of the autodiff Jacobian`` () =
    Gens.check 5 (Gen.zip Gens.seed (Gen.choose (1, 5))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let f = mlpField g dim (Tensor.scalar(0.4, Dtype.Float64))
        let z = Draw.normal g [| 7; dim |]
        let y, divergence = Trace.exact f z
        let jacobians = (Ad.batchJacobian f z).toArray64()
        let expected = Array.init 7 (fun r -> Seq.sum (seq { for i in 0 .. dim - 1 -> jacobians[r * dim * dim + i * dim + i] }))
        Close.tensors "f(z)" Tolerance.float64 (f z) y
        Close.arrays "divergence" Tolerance.float64 expected (divergence.toArray64()))

[<Fact>]
let ``the exact divergence is differentiable: its gradient matches central differences`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let f = mlpField g dim (Tensor.scalar(0.2, Dtype.Float64))
        FiniteDifferences.checkVjp "divergence" seed (fun xs -> [| snd (Trace.exact f xs[0]) |]) [| Draw.normal g [| 3; dim |] |])

[<Theory>]
[<InlineData("gaussian")>]
[<InlineData("rademacher")>]
let ``Hutchinson's estimator is unbiased: the mean of many probes is within four standard errors of the trace`` (noiseName: string) =
    let noise = if noiseName = "gaussian" then Noise.Gaussian else Noise.Rademacher
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (2, 4))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let f = mlpField g dim (Tensor.scalar(0.6, Dtype.Float64))
        let probes = 20_000
        // one point repeated: each row gets its own probe, so the rows are independent estimates
        let z = (Draw.normal g [| 1; dim |]).expand([| probes; dim |])
        let _, exact = Trace.exact f (z.narrow(0, 0, 1))
        let _, estimates = Trace.hutchinson (Trace.probe noise g z) f z
        let values = estimates.toArray64()
        let mean = Array.average values
        let se = sqrt (Array.averageBy (fun v -> (v - mean) ** 2.0) values / float probes)
        let truth = exact.toScalar()
        if abs (mean - truth) > 4.0 * se + 1e-12 then
            failwith $"{noiseName}: mean {mean} of {probes} probes is {abs (mean - truth) / se} standard errors from the trace {truth}")

[<Fact>]
let ``a Hutchinson CNF's log-det is unbiased for the exact CNF's`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (2, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let options = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-8 }
        let exactCnf = Cnf.createWith options g Dtype.Float64 dim |> Entry.perturb g 0.3
        let estimated = { Cnf.createWith { options with Trace = CnfTrace.Hutchinson(Noise.Rademacher, Generator(uint64 seed)) } g Dtype.Float64 dim with Params = exactCnf.Params }
        let rows = 4000
        let x = (Draw.normal g [| 1; dim |]).expand([| rows; dim |])
        let y, logDet = Bijector.forward Context.none (x.narrow(0, 0, 1)) exactCnf
        let y', estimates = Bijector.forward Context.none x estimated
        Close.tensors "the state does not depend on the probes" { Abs = 1e-6; Rel = 1e-6 } (y.expand([| rows; dim |])) y'
        let values = estimates.toArray64()
        let mean = Array.average values
        let se = sqrt (Array.averageBy (fun v -> (v - mean) ** 2.0) values / float rows)
        if abs (mean - logDet.toScalar()) > 4.0 * se + 1e-6 then
            failwith $"mean log-det {mean} (standard error {se}) against the exact {logDet.toScalar()}")

[<Fact>]
let ``a CNF rejects settings it cannot meet with a clear error`` () =
    let error = Assert.ThrowsAny<System.ArgumentException>(fun () -> Cnf.createWith { Cnf.defaults with EndTime = -1.0 } (Generator 1UL) Dtype.Float64 2 |> ignore)
    Assert.Contains("EndTime", error.Message)

[<Fact>]
let ``a CNF keeps its error measure through its settings, and older settings read as the max measure`` () =
    let g = Generator 3UL
    let rms = Cnf.createWith { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-6; ErrorMeasure = ErrorMeasure.RootMeanSquare } g Dtype.Float64 2 |> Entry.perturb g 0.3
    Assert.Equal(ErrorMeasure.RootMeanSquare, (Cnf.optionsOf rms.Settings).ErrorMeasure)
    Assert.Equal(ErrorMeasure.Max, (Cnf.optionsOf (rms.Settings.Remove "errorMeasure")).ErrorMeasure)
    let rebuilt = { Cnf.build Dtype.Float64 rms.Settings with Params = rms.Params }
    let x = Draw.normal g [| 16; 2 |]
    let y, logDet = Bijector.forward Context.none x rms
    let y', logDet' = Bijector.forward Context.none x rebuilt
    Close.tensors "rebuilt state" { Abs = 0.0; Rel = 0.0 } y y'
    Close.tensors "rebuilt log-det" { Abs = 0.0; Rel = 0.0 } logDet logDet'
    let max = { rms with Forward = (Cnf.createWith { Cnf.optionsOf rms.Settings with ErrorMeasure = ErrorMeasure.Max } g Dtype.Float64 2).Forward }
    let yMax, _ = Bijector.forward Context.none x max
    Close.tensors "both measures solve the same ODE" { Abs = 1e-4; Rel = 1e-4 } yMax y
