/// The adjoint method against backpropagation through the solver: the same solve, gradients in the
/// start and in the dynamics' parameters equal within the solver tolerance, forward and backward
/// in time, for a neural ODE and for a CNF's negative log-likelihood.
module Flows.Properties.Continuous.AdjointTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Continuous
open Flows.Distributions
open Flows.Nn
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

// Tight tolerances: the two gradients are different discretisations of the same integral, so they
// agree to about the solver tolerance times the problem's condition, not to rounding.
let private solver = Solver.Dopri5(Tolerances.uniform 1e-10)
let private close = { Abs = 1e-6; Rel = 1e-6 }

let private mlpParameters (g: Generator) (dim: int) =
    Mlp.create g Dtype.Float64 [ dim + 1; 8; dim ] false |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.3)

[<Fact>]
let ``adjoint gradients equal backpropagation-through-the-solver gradients, forward and backward in time`` () =
    Gens.check 4 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let p = mlpParameters g dim
        let z0 = Draw.normal g [| 5; dim |]
        let weights = Draw.normal g [| 5; dim |]
        let field (theta: Tensor[]) t z = Cnf.dynamics (p.WithValues theta) t z
        for t0, t1 in [ 0.0, 1.2; 0.8, -0.3 ] do
            let loss (solveWith: Tensor[] -> Tensor -> Tensor) (xs: Tensor[]) = ((solveWith xs[1..] xs[0]).tanh() * weights).sum()
            let byAdjoint theta z = Adjoint.solve solver SolverOptions.defaults field theta z t0 t1
            let byBackprop theta z = (Ode.solve solver SolverOptions.defaults (field theta) z t0 t1 [||]).Final
            let inputs = Array.append [| z0 |] p.Values
            Close.tensors "the adjoint's forward is the plain solve" Tolerance.float64 (byBackprop p.Values z0) (byAdjoint p.Values z0)
            let expected = Ad.gradN (loss byBackprop) inputs
            let actual = Ad.gradN (loss byAdjoint) inputs
            Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient {i} from t = {t0} to {t1}" close e a) expected actual)

[<Fact>]
let ``a CNF differentiated by the adjoint has the backpropagated gradients of its log-likelihood`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let options = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-10 }
        let backprop = Cnf.createWith options g Dtype.Float64 dim |> Entry.perturb g 0.3
        let adjoint = { Cnf.createWith { options with Gradient = CnfGradient.Adjoint } g Dtype.Float64 dim with Params = backprop.Params }
        let y = Draw.normal g [| 6; dim |]
        let nll (b: Bijector) (values: Tensor[]) =
            let flow = Flow.create (Distribution.standardNormal [| dim |] Dtype.Float64) [ { b with Params = b.Params.WithValues values } ]
            -((Flow.logProb Context.none y flow).mean())
        let values = backprop.Params.Values
        Close.scalar "the same log-likelihood" Tolerance.float64 ((nll backprop values).toScalar()) ((nll adjoint values).toScalar())
        Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient of {backprop.Params.Names[i]}" close e a)
            (Ad.gradN (nll backprop) values) (Ad.gradN (nll adjoint) values))

[<Theory>]
[<InlineData("gaussian")>]
[<InlineData("rademacher")>]
let ``a Hutchinson CNF under the adjoint uses one probe per solve: backpropagated gradients and a backward NFE near the forward`` (noiseName: string) =
    // FFJORD's configuration: the probe is drawn once per solve and the backward solve sees the same
    // one, so the adjoint differentiates the same estimate that backpropagation does
    let noise = if noiseName = "gaussian" then Noise.Gaussian else Noise.Rademacher
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (2, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let solves = System.Collections.Generic.List<CnfSolve>()
        let options gradient probeSeed =
            { Cnf.defaults with
                Hidden = [ 8 ]; Tolerance = 1e-6; Trace = CnfTrace.Hutchinson(noise, Generator probeSeed); Gradient = gradient
                OnSolve = (if gradient = CnfGradient.Adjoint then Some solves.Add else None) }
        let backprop = Cnf.createWith (options CnfGradient.Backprop 11UL) g Dtype.Float64 dim |> Entry.perturb g 0.3
        let adjoint = { Cnf.createWith (options CnfGradient.Adjoint 11UL) g Dtype.Float64 dim with Params = backprop.Params }
        let y = Draw.normal g [| 6; dim |]
        let nll (b: Bijector) (values: Tensor[]) =
            let flow = Flow.create (Distribution.standardNormal [| dim |] Dtype.Float64) [ { b with Params = b.Params.WithValues values } ]
            -((Flow.logProb Context.none y flow).mean())
        let values = backprop.Params.Values
        // one solve each, with the first probe of identically seeded generators
        Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient of {backprop.Params.Names[i]}" { Abs = 1e-5; Rel = 1e-4 } e a)
            (Ad.gradN (nll backprop) values) (Ad.gradN (nll adjoint) values)
        let nfe pass = solves |> Seq.filter (fun s -> s.Pass = pass) |> Seq.sumBy _.Nfe
        let forward, backward = nfe SolvePass.Forward, nfe SolvePass.Backward
        Assert.True(backward <= 2 * forward, $"backward NFE {backward} against forward {forward}"))
