/// Flow matching: the CFM target against central differences of the path, a Gaussian → Gaussian
/// case whose marginal field is known in closed form (the transported samples and the CNF
/// log-density against the exact Gaussian), a trained field's log-density against the same closed form, sampling
/// and likelihood of one field agreeing with each other, and the CNF's solve reports.
module Flows.Properties.Continuous.FlowMatchingTests

open System
open Xunit
open FsCheck.FSharp
open Flows
open Flows.Continuous
open Flows.Distributions
open Flows.Ode
open Flows.Tensors
open Flows.Training
open Flows.Laws
open Flows.Properties.Support

let private log2Pi = log (2.0 * Math.PI)

// log N(x; μ, v·I) per row, in plain floats.
let private isotropicLogDensity (mu: float[]) (variance: float) (x: Tensor) =
    let d = mu.Length
    let xs = x.toArray64()
    Array.init (xs.Length / d) (fun r ->
        let sq = Seq.sum (seq { for i in 0 .. d - 1 -> (xs[r * d + i] - mu[i]) ** 2.0 })
        -0.5 * (sq / variance + float d * (log2Pi + log variance)))

// The marginal field of the OT path from N(0, I) to N(μ, s²I): x_t ~ N(tμ, σ_t²I) with
// σ_t² = a² + t²s², a = 1 − (1 − σ_min)t, and v(t, x) = E[u_t | x_t = x] = μ + (σ_t'/σ_t)(x − tμ).
let private gaussianField (sigmaMin: float) (mu: float[]) (s: float) : Dynamics =
    fun t x ->
        let t = t.toScalar()
        let a = 1.0 - (1.0 - sigmaMin) * t
        let rate = (t * s * s - (1.0 - sigmaMin) * a) / (a * a + t * t * s * s)
        let m = Tensor.ofArray(mu, [| 1; mu.Length |]).cast(x.dtype)
        m + (x - m * t) * rate

let private standardNormalLogProb (z: Tensor) = (z.square().sum(1) + float z.shape[1] * log2Pi) * -0.5

[<Fact>]
let ``the CFM target velocity is the time derivative of the conditional path (central differences)`` () =
    Gens.check 10 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let x0, x1 = Draw.normal g [| 5; dim |], Draw.normal g [| 5; dim |]
        let sigmaMin = (Draw.uniform g 0.0 0.2 [| 1 |]).toArray64()[0]
        let t = Draw.uniform g 0.01 0.99 [| 5; 1 |]
        let h = 1e-6
        let difference = (FlowMatching.interpolate sigmaMin x0 x1 (t + h) - FlowMatching.interpolate sigmaMin x0 x1 (t - h)) / (2.0 * h)
        Close.tensors "u_t against d/dt x_t" Tolerance.centralDifference difference (FlowMatching.targetVelocity sigmaMin x0 x1)
        // the ends: x0 at t = 0, x1 + σ_min·x0 at t = 1
        Close.tensors "x_0" Tolerance.float64 x0 (FlowMatching.interpolate sigmaMin x0 x1 (t.zerosLike()))
        Close.tensors "x_1" Tolerance.float64 (x1 + x0 * sigmaMin) (FlowMatching.interpolate sigmaMin x0 x1 (t.onesLike())))

[<Fact>]
let ``the closed-form Gaussian field carries N(0, I) to N(μ, (σ_min² + s²)I), and the CNF integration gives that log-density`` () =
    Gens.check 4 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let mu = (Draw.normal g [| dim |]).toArray64()
        let s = (Draw.uniform g 0.4 2.0 [| 1 |]).toArray64()[0]
        let sigmaMin = (Draw.uniform g 0.0 0.1 [| 1 |]).toArray64()[0]
        let field = gaussianField sigmaMin mu s
        let solver = Solver.Dopri5(Tolerances.uniform 1e-10)
        let z0 = Draw.normal g [| 6; dim |]
        // the affine field moves each point along x_t = tμ + σ_t·z0
        let scale = sqrt (sigmaMin * sigmaMin + s * s)
        let expected = Tensor.ofArray(mu, [| 1; dim |]) + z0 * scale
        Close.tensors "transported z0" { Abs = 1e-7; Rel = 1e-7 } expected (FlowMatching.transport solver field z0 [||]).Final
        let x = Draw.normal g [| 6; dim |] * (2.0 * s)
        let logDensity = FlowMatching.logDensity solver field standardNormalLogProb x
        Close.arrays "log p_1(x)" { Abs = 1e-7; Rel = 1e-7 } (isotropicLogDensity mu (scale * scale) x) (logDensity.toArray64()))

[<Fact>]
let ``a field trained by flow matching on N(0, 1) → N(1.5, 0.5²) gives the closed-form log-density through the CNF integration`` () =
    let sigmaMin, mu, s = 1e-3, 1.5, 0.5
    let model = FlowMatching.create { Cnf.defaults with Hidden = [ 32; 32 ]; Tolerance = 1e-8 } (Generator 3UL) Dtype.Float64 1
    let options = { TrainOptions.defaults with Steps = 2000; BatchSize = 256; LearningRate = 3e-3; Seed = 5UL; Schedule = Schedule.Cosine(2000, 0.02) }
    let source = DataSource.Sampler(fun g n -> g.normal([| n; 1 |], mu, s, Dtype.Float64))
    let trained, _ = Train.fit options (FlowMatching.objective sigmaMin source) model |> Train.result
    let x = Tensor.linspace(mu - 1.5 * s, mu + 1.5 * s, 9, Dtype.Float64).reshape([| 9; 1 |])
    let variance = sigmaMin * sigmaMin + s * s
    Close.arrays "log p_1 on [μ − 1.5s, μ + 1.5s]" { Abs = 0.1; Rel = 0.0 } (isotropicLogDensity [| mu |] variance x)
        ((Flow.logProb Context.none x trained).toArray64())

[<Fact>]
let ``samples drawn by the ODE score, through the CNF integration, the base density minus the forward log-det`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let model =
            let flow = FlowMatching.create { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-10 } g Dtype.Float64 dim
            { flow with Layers = flow.Layers |> List.map (Entry.perturb g 0.5) }
        let solver = Solver.Dopri5(Tolerances.uniform 1e-10)
        let x = FlowMatching.sample solver (Generator(uint64 seed)) 6 model
        let z0 = Distribution.sample model.Base model.Base.Params (Generator(uint64 seed)) 6
        let _, forwardLogDet, _ = Cnf.integrate solver SolverOptions.defaults TraceMode.Exact (FlowMatching.field model) z0 0.0 1.0
        let expected = standardNormalLogProb z0 - forwardLogDet
        Close.tensors "log q(x) by Flow.logProb" { Abs = 1e-7; Rel = 1e-7 } expected (Flow.logProb Context.none x model)
        Close.tensors "log q(x) by FlowMatching.logDensity" { Abs = 1e-7; Rel = 1e-7 } expected
            (FlowMatching.logDensity solver (FlowMatching.field model) standardNormalLogProb x)
        Close.tensors "the inverse recovers z0" { Abs = 1e-7; Rel = 1e-7 } z0 (fst (Flow.inverse Context.none x model))
        // RK4 with fixed steps draws the same samples up to its discretisation error
        Close.tensors "RK4 samples" { Abs = 1e-6; Rel = 1e-6 } x (FlowMatching.sample (Solver.Rk4 100) (Generator(uint64 seed)) 6 model))

[<Fact>]
let ``a CNF reports each solve's NFE: the map's solve, and under the adjoint the backward solve when gradients are taken`` () =
    for gradient in [ CnfGradient.Backprop; CnfGradient.Adjoint ] do
        let reports = Collections.Generic.List<CnfSolve>()
        let options = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-6; Gradient = gradient; OnSolve = Some reports.Add }
        let g = Generator 11UL
        let cnf = Cnf.createWith options g Dtype.Float64 2 |> Entry.perturb g 0.3
        let x = Draw.normal g [| 4; 2 |]
        let _, grads = Ad.fgradN (fun values -> (snd (Bijector.inverse Context.none x { cnf with Params = cnf.Params.WithValues values })).sum()) cnf.Params.Values
        Assert.True(grads.Length > 0)
        // the same solve made directly
        let _, _, solution =
            Cnf.integrate (Cnf.solverFor Dtype.Float64 options.Tolerance) SolverOptions.defaults TraceMode.Exact (Cnf.dynamics cnf.Params) x 1.0 0.0
        let forward = reports |> Seq.filter (fun r -> r.Pass = SolvePass.Forward) |> List.ofSeq
        let backward = reports |> Seq.filter (fun r -> r.Pass = SolvePass.Backward) |> List.ofSeq
        match forward with
        | [ r ] ->
            Assert.Equal((1.0, 0.0), (r.From, r.To))
            Assert.Equal((solution.Nfe, solution.Accepted, solution.Rejected), (r.Nfe, r.Accepted, r.Rejected))
        | other -> failwith $"{gradient}: expected one forward report, got {other.Length}"
        match gradient, backward with
        | CnfGradient.Backprop, [] -> ()
        | CnfGradient.Adjoint, [ r ] ->
            Assert.Equal((0.0, 1.0), (r.From, r.To))
            Assert.True(r.Nfe > 0 && r.Accepted > 0, $"backward solve NFE {r.Nfe}, accepted {r.Accepted}")
        | _, other -> failwith $"{gradient}: unexpected backward reports {other.Length}"

[<Fact>]
let ``flow matching rejects σ_min outside [0, 1) and a flow that is not one CNF`` () =
    let source = DataSource.Sampler(fun g n -> g.normal([| n; 2 |]))
    let error = Assert.ThrowsAny<ArgumentException>(fun () -> FlowMatching.objective 1.0 source |> ignore)
    Assert.Contains("sigmaMin", error.Message)
    let notCnf = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) []
    let error = Assert.ThrowsAny<ArgumentException>(fun () -> FlowMatching.sample (Solver.Rk4 4) (Generator 1UL) 3 notCnf |> ignore)
    Assert.Contains("one CNF layer", error.Message)
