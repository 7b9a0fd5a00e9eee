/// The training loop and its parts: optimiser steps against updates computed here from the papers'
/// formulas, gradient clipping, schedules, the non-finite guard, early stopping, and two fits whose
/// outcome is known (a coupling flow on eight Gaussians; reverse KL to a Gaussian target).
module Flows.Properties.Training.TrainTests

open System
open Xunit
open FsCheck.FSharp
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Tensors
open Flows.Training
open Flows.Laws
open Flows.Properties.Support

let private flat (p: Params) = p.Values |> Array.collect _.toArray64()

/// A tiny parameter set: a vector of 3, a 2 × 2 matrix and a vector of 19 (the fused Adam's SIMD
/// body and its scalar tail both run).
let private tinyParams (g: Generator) =
    Params.ofList [ "a", Draw.normal g [| 3 |]; "b", Draw.normal g [| 2; 2 |]; "c", Draw.normal g [| 19 |] ]

/// Gradients shaped like `tinyParams`, scaled so that some entries are small and some large.
let private tinyGrads (g: Generator) = [| Draw.normal g [| 3 |] * 2.0; Draw.normal g [| 2; 2 |] * 0.1; Draw.normal g [| 19 |] * 0.5 |]

/// Runs `steps` optimiser steps with fresh gradients; returns the start, the gradients and the end.
let private run (optimiser: Optimiser) (lrs: float[]) (seed: int) =
    let g = Draw.generator seed
    let start = tinyParams g
    let grads = lrs |> Array.map (fun _ -> tinyGrads g)
    let final, _ =
        Array.fold2 (fun (p, s) lr gs -> Optimiser.step optimiser lr s p gs) (start, Optimiser.init start) lrs grads
    flat start, grads |> Array.map (Array.collect _.toArray64()), flat final

/// Adam as Kingma & Ba's Algorithm 1 with torch's weight decay: L2 added to the gradient, or
/// (decoupled, Loshchilov & Hutter) the weights shrunk by lr·decay before the update.
let private referenceAdam (b1, b2, eps, decay) (decoupled: bool) (lrs: float[]) (w0: float[]) (grads: float[][]) =
    let w = Array.copy w0
    let m = Array.zeroCreate w.Length
    let v = Array.zeroCreate w.Length
    for t in 1 .. lrs.Length do
        let lr = lrs[t - 1]
        for i in 0 .. w.Length - 1 do
            let g = if decoupled then grads[t - 1][i] else grads[t - 1][i] + decay * w[i]
            if decoupled then w[i] <- w[i] * (1.0 - lr * decay)
            m[i] <- b1 * m[i] + (1.0 - b1) * g
            v[i] <- b2 * v[i] + (1.0 - b2) * g * g
            let mHat = m[i] / (1.0 - Math.Pow(b1, float t))
            let vHat = v[i] / (1.0 - Math.Pow(b2, float t))
            w[i] <- w[i] - lr * mHat / (sqrt vHat + eps)
    w

/// SGD with heavy-ball momentum as torch.optim.SGD (no dampening): the buffer starts as the first
/// gradient, and L2 decay is added to the gradient.
let private referenceSgd (momentum: float) (decay: float) (lrs: float[]) (w0: float[]) (grads: float[][]) =
    let w = Array.copy w0
    let buffer = Array.zeroCreate w.Length
    for t in 1 .. lrs.Length do
        for i in 0 .. w.Length - 1 do
            let g = grads[t - 1][i] + decay * w[i]
            buffer[i] <- if t = 1 then g else momentum * buffer[i] + g
            w[i] <- w[i] - lrs[t - 1] * buffer[i]
    w

// Learning rates that change between steps, so a step that reads the wrong one is seen.
let private lrs = [| 0.1; 0.05; 0.2; 0.01; 0.1 |]

[<Fact>]
let ``an Adam step matches Adam computed from the paper's formulas`` () =
    // eps = 1e-3 is large enough that where it is added (outside the square root) shows.
    Gens.check 10 Gens.seed (fun seed ->
        let hyper = (0.9, 0.999, 1e-3, 0.0)
        let start, grads, actual = run (Optimiser.Adam hyper) lrs seed
        Close.arrays "Adam" Tolerance.float64 (referenceAdam hyper false lrs start grads) actual)

[<Fact>]
let ``an Adam step with weight decay adds the decay to the gradient`` () =
    Gens.check 10 Gens.seed (fun seed ->
        let hyper = (0.8, 0.99, 1e-8, 0.1)
        let start, grads, actual = run (Optimiser.Adam hyper) lrs seed
        Close.arrays "Adam with L2 decay" Tolerance.float64 (referenceAdam hyper false lrs start grads) actual)

[<Fact>]
let ``a float32 Adam step matches the float64 formulas to float32 precision`` () =
    // the fused kernel's SIMD body (8 or 16 float32 lanes) and tail both run on the 19-vector
    Gens.check 5 Gens.seed (fun seed ->
        let hyper = (0.9, 0.999, 1e-8, 0.1)
        let g = Draw.generator seed
        let start = tinyParams g
        let start32 = start.WithValues(start.Values |> Array.map (fun v -> v.cast Dtype.Float32))
        let grads = lrs |> Array.map (fun _ -> tinyGrads g |> Array.map (fun v -> v.cast Dtype.Float32))
        let final, _ = Array.fold2 (fun (p, s) lr gs -> Optimiser.step (Optimiser.Adam hyper) lr s p gs) (start32, Optimiser.init start32) lrs grads
        let expected = referenceAdam hyper false lrs (flat start32) (grads |> Array.map (Array.collect _.toArray64()))
        Close.arrays "float32 Adam" { Abs = 1e-6; Rel = 1e-5 } expected (flat final))

[<Fact>]
let ``an AdamW step decays the weights apart from the gradient`` () =
    Gens.check 10 Gens.seed (fun seed ->
        let hyper = (0.9, 0.999, 1e-8, 0.3)
        let start, grads, actual = run (Optimiser.AdamW hyper) lrs seed
        Close.arrays "AdamW" Tolerance.float64 (referenceAdam hyper true lrs start grads) actual)

[<Fact>]
let ``an SGD step with momentum and weight decay matches heavy-ball SGD`` () =
    Gens.check 10 (Gen.zip Gens.seed (Gen.elements [ 0.0; 0.5; 0.9 ])) (fun (seed, momentum) ->
        let start, grads, actual = run (Optimiser.Sgd(momentum, 0.01)) lrs seed
        Close.arrays $"SGD (momentum {momentum})" Tolerance.float64 (referenceSgd momentum 0.01 lrs start grads) actual)

[<Fact>]
let ``clipping scales the gradients to the requested global norm and reports the norm before`` () =
    Gens.check 20 (Gen.zip Gens.seed (Gen.choose (1, 99))) (fun (seed, percent) ->
        let grads = tinyGrads (Draw.generator seed)
        let values = grads |> Array.collect _.toArray64()
        let norm = sqrt (values |> Array.sumBy (fun v -> v * v))
        let maxNorm = norm * float percent / 100.0
        let clipped, before = Optimiser.clip maxNorm grads
        let after = clipped |> Array.collect _.toArray64()
        Close.scalar "norm before clipping" Tolerance.float64 norm before
        Close.scalar "norm after clipping" Tolerance.float64 maxNorm (sqrt (after |> Array.sumBy (fun v -> v * v)))
        Close.arrays "clipped direction" Tolerance.float64 (values |> Array.map (fun v -> v * maxNorm / norm)) after
        let unclipped, _ = Optimiser.clip (norm * 1.5) grads
        Close.arrays "gradients under the limit" { Abs = 0.0; Rel = 0.0 } values (unclipped |> Array.collect _.toArray64()))

[<Fact>]
let ``the cosine schedule follows SGDR's annealing formula and stays at the floor afterwards`` () =
    Gens.check 50 (Gen.zip3 (Gen.choose (1, 2000)) (Gen.choose (0, 50)) (Gen.choose (0, 4000))) (fun (steps, floorPercent, t) ->
        let floor = float floorPercent / 100.0
        // Loshchilov & Hutter (2017), eq. 5: η = η_min + ½(η_max − η_min)(1 + cos(π T_cur / T_i)), η_max = 1.
        let expected = if t >= steps then floor else floor + 0.5 * (1.0 - floor) * (1.0 + cos (Math.PI * float t / float steps))
        Close.scalar $"cosine({steps}, {floor}) at {t}" Tolerance.float64 expected (Schedule.factor (Schedule.Cosine(steps, floor)) t)
        Close.scalar "cosine at 0" Tolerance.float64 1.0 (Schedule.factor (Schedule.Cosine(steps, floor)) 0)
        Close.scalar "cosine at the end" Tolerance.float64 floor (Schedule.factor (Schedule.Cosine(steps, floor)) steps))

[<Fact>]
let ``the cosine schedule is halfway between one and the floor at half the steps`` () =
    Gens.check 20 (Gen.zip (Gen.choose (1, 1000)) (Gen.choose (0, 50))) (fun (half, floorPercent) ->
        let floor = float floorPercent / 100.0
        Close.scalar "cosine at half" Tolerance.float64 ((1.0 + floor) / 2.0) (Schedule.factor (Schedule.Cosine(2 * half, floor)) half))

[<Fact>]
let ``the step schedule multiplies by gamma once every so many steps`` () =
    Gens.check 50 (Gen.zip3 (Gen.choose (1, 50)) (Gen.choose (1, 99)) (Gen.choose (0, 500))) (fun (every, gammaPercent, t) ->
        let gamma = float gammaPercent / 100.0
        let mutable expected = 1.0
        for s in 1 .. t do
            if s % every = 0 then expected <- expected * gamma
        Close.scalar $"step({every}, {gamma}) at {t}" Tolerance.float64 expected (Schedule.factor (Schedule.Step(every, gamma)) t))

[<Fact>]
let ``the warm-up schedule rises by one warm-up step's share each step and then holds the full rate`` () =
    Gens.check 50 (Gen.zip (Gen.choose (1, 2000)) (Gen.choose (0, 4000))) (fun (steps, t) ->
        let factor = Schedule.factor (Schedule.Warmup steps)
        if t < steps - 1 then
            Close.scalar $"warm-up({steps}) rise at {t}" Tolerance.float64 (1.0 / float steps) (factor (t + 1) - factor t)
        else Close.scalar $"warm-up({steps}) at {t}" Tolerance.float64 1.0 (factor t)
        Close.scalar "first step" Tolerance.float64 (1.0 / float steps) (factor 0))

/// A small float64 flow: two RealNVP couplings with a swap after each, on a standard normal base.
let private couplingFlow (seed: uint64) (hidden: int list) =
    let g = Generator seed
    let coupling () = Coupling.realNvp g Dtype.Float64 2 hidden (Coupling.Mask.Half false)
    Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ coupling (); Permute.swap 2; coupling (); Permute.swap 2 ]

let private nanRows (_: Generator) (n: int) = Tensor.full([| n; 2 |], nan, Dtype.Float64)

[<Fact>]
let ``a fit whose loss is always NaN stops as Diverged after MaxBadSteps with the initial parameters`` () =
    let flow = couplingFlow 3UL [ 4 ]
    let options = { TrainOptions.defaults with Steps = 100; MaxBadSteps = 7; BatchSize = 8 }
    match Train.fit options (Objective.ForwardKl(DataSource.Sampler nanRows)) flow with
    | Converged(_, report) -> failwith $"expected Diverged, got Converged: {report.Message}"
    | Diverged(lastGood, report) ->
        Close.arrays "parameters after divergence" { Abs = 0.0; Rel = 0.0 } (flat (Flow.parameters flow)) (flat (Flow.parameters lastGood))
        Assert.Equal(7, report.StepsRun)
        Assert.Equal(7, report.SkippedSteps)
        Assert.True(report.StoppedEarly, "a diverged fit is a stop")
        Assert.True(report.Losses |> Array.forall Double.IsNaN, "every recorded loss is NaN")
        Assert.Contains("7 consecutive steps had a non-finite loss or gradient", report.Message)
        Assert.Contains("kept the last parameters with a finite loss", report.Message)

[<Fact>]
let ``a fit whose loss is always NaN keeps the initial parameters and buffers of data-dependent layers`` () =
    let flow =
        Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ ActNorm.create Dtype.Float64 2; BatchNorm.create 0.1 Dtype.Float64 2 ]
    let options = { TrainOptions.defaults with Steps = 100; MaxBadSteps = 3; BatchSize = 8 }
    match Train.fit options (Objective.ForwardKl(DataSource.Sampler nanRows)) flow with
    | Converged(_, report) -> failwith $"expected Diverged, got Converged: {report.Message}"
    | Diverged(lastGood, _) ->
        for before, after in List.zip flow.Layers lastGood.Layers do
            Close.arrays $"{before.Name} parameters" { Abs = 0.0; Rel = 0.0 } (flat before.Params) (flat after.Params)
            Close.arrays $"{before.Name} buffers" { Abs = 0.0; Rel = 0.0 } (flat before.Buffers) (flat after.Buffers)

[<Fact>]
let ``a fit that turns NaN after some good steps keeps the parameters of the last good step`` () =
    let good = 5
    let data (g: Generator) (n: int) = Toy.eightGaussians g n Dtype.Float64
    let breaking () =
        let calls = ref 0
        fun (g: Generator) (n: int) ->
            calls.Value <- calls.Value + 1
            if calls.Value <= good then data g n else nanRows g n
    let flow = couplingFlow 4UL [ 4 ]
    let options = { TrainOptions.defaults with Steps = 100; MaxBadSteps = 3; BatchSize = 32; LearningRate = 1e-2 }
    // the last parameters whose loss was finite: those the fifth step started from (its update was
    // never scored)
    let expected, _ = Train.result (Train.fit { options with Steps = good - 1 } (Objective.ForwardKl(DataSource.Sampler data)) flow)
    match Train.fit options (Objective.ForwardKl(DataSource.Sampler(breaking ()))) flow with
    | Converged(_, report) -> failwith $"expected Diverged, got Converged: {report.Message}"
    | Diverged(lastGood, report) ->
        Close.arrays "last good parameters" { Abs = 0.0; Rel = 0.0 } (flat (Flow.parameters expected)) (flat (Flow.parameters lastGood))
        Assert.Equal(good + 3, report.StepsRun)
        Assert.Equal(3, report.SkippedSteps)

/// Full-batch fitting of an affine flow to a symmetric data set of spread 20 only widens the scale
/// (the shift's gradient is zero by symmetry), and every widening past 0.1 makes the NLL of
/// validation rows of spread 0.1 worse: the first check stays the best. No patience is set.
let private widening () =
    let g = Generator 8UL
    let half = g.normal([| 200; 2 |], 0.0, 20.0, Dtype.Float64)
    let train = Tensor.cat([| half; -half |], 0)
    let validation = g.normal([| 100; 2 |], 0.0, 0.1, Dtype.Float64)
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ Elementwise.affine Dtype.Float64 2 ]
    let options =
        { TrainOptions.defaults with
            Steps = 1000; BatchSize = 400; LearningRate = 0.05; Validation = Some validation; ValidateEvery = 10; Patience = None }
    train, validation, flow, options

[<Fact>]
let ``validation with patience stops early and returns the best validated flow`` () =
    let train, validation, flow, options = widening ()
    let options = { options with Patience = Some 3 }
    match Train.fit options (Objective.ForwardKl(DataSource.Dataset train)) flow with
    | Diverged(_, report) -> failwith $"expected Converged, got Diverged: {report.Message}"
    | Converged(best, report) ->
        Assert.True(report.StoppedEarly, report.Message)
        Assert.Equal(40, report.StepsRun)
        Assert.Equal<int[]>([| 10; 20; 30; 40 |], report.Validations |> Array.map fst)
        Assert.Contains("early stop at step 40", report.Message)
        let nll = -((Flow.logProb Context.none validation best).mean().toScalar())
        Close.scalar "validation NLL of the returned flow" Tolerance.float64 (snd report.Validations[0]) nll

[<Fact>]
let ``a finite fit whose validation explodes stops without patience and returns the best validated flow`` () =
    // with no patience set, only the guard against a validation far above its best can stop the run
    let train, validation, flow, options = widening ()
    let best, report = Train.result (Train.fit options (Objective.ForwardKl(DataSource.Dataset train)) flow)
    let bestStep, bestNll = report.Validations |> Array.minBy snd
    match report.Stop with
    | StopReason.Exploded(at, kept) ->
        Assert.Equal(bestStep, kept)
        Assert.True(at < 1000, $"stopped at {at}")
        // every check that counted was far above the best: max(1, |best| / 2) nats
        let last5 = report.Validations |> Array.rev |> Array.take 5
        Assert.All(last5, fun (_, v) -> Assert.True(v > bestNll + max 1.0 (0.5 * abs bestNll), $"{v} against best {bestNll}"))
    | other -> failwith $"expected an exploding stop, got {other}: {report.Message}"
    Close.scalar "validation NLL of the returned flow" Tolerance.float64 bestNll (-((Flow.logProb Context.none validation best).mean().toScalar()))

[<Fact>]
let ``a coupling flow trained on eight Gaussians beats the untrained flow and the best Gaussian`` () =
    let train = Toy.eightGaussians (Generator 21UL) 4000 Dtype.Float64
    let heldOut = Toy.eightGaussians (Generator 22UL) 4000 Dtype.Float64
    let flow = couplingFlow 5UL [ 32; 32 ]
    let nll (f: Flow) = -((Flow.logProb Context.none heldOut f).mean().toScalar())
    let options = { TrainOptions.defaults with Steps = 400; BatchSize = 256; LearningRate = 5e-3; Seed = 9UL }
    let trained, report = Train.result (Train.fit options (Objective.ForwardKl(DataSource.Dataset train)) flow)
    // The best single Gaussian has the data's covariance (r²/2 + s²)·I, r = 4/√2, s = 0.5/√2:
    // its expected NLL is 1 + log 2π + log(r²/2 + s²) nats in 2-D.
    let r, s = 4.0 / sqrt 2.0, 0.5 / sqrt 2.0
    let bestGaussian = 1.0 + log (2.0 * Math.PI) + log (r * r / 2.0 + s * s)
    let before, after = nll flow, nll trained
    if not (after < before - 1.5) then failwith $"held-out NLL went from {before} to {after} ({report.Message}); expected at least 1.5 nats lower"
    if not (after < bestGaussian) then failwith $"held-out NLL {after} is not below the best Gaussian's {bestGaussian}"

[<Fact>]
let ``reverse KL fits an affine flow on a diagonal normal to a Gaussian target's mean and scale`` () =
    let mu, sigma = [| 1.0; -2.0 |], [| 0.5; 2.0 |]
    let target (z: Tensor) =
        let u = (z - Tensor.ofArray mu) / Tensor.ofArray sigma
        u.square().sum(1) * -0.5
    let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float64) [ Elementwise.affine Dtype.Float64 2 ]
    let options =
        { TrainOptions.defaults with
            Steps = 600; BatchSize = 256; LearningRate = 0.05; Schedule = Schedule.Cosine(600, 0.01); Seed = 12UL }
    let trained, report = Train.result (Train.fit options (Objective.ReverseKl target) flow)
    // x = (loc + e^logScale·ε)·e^s + t: mean loc·e^s + t, standard deviation e^(logScale + s).
    let p = Flow.parameters trained
    let loc, logScale = p["base.loc"].toArray64(), p["base.logScale"].toArray64()
    let s, t = p["layers.0.logScale"].toArray64(), p["layers.0.shift"].toArray64()
    let mean = Array.init 2 (fun i -> loc[i] * exp s[i] + t[i])
    let std = Array.init 2 (fun i -> exp (logScale[i] + s[i]))
    // At the optimum the reparameterised gradient's noise vanishes with the path term; the final
    // learning rate 5e-4 moves parameters by about that much a step: 1% of σ is twenty such steps.
    for i in 0 .. 1 do
        Close.scalar $"mean[{i}] ({report.Message})" { Abs = 0.01 * sigma[i]; Rel = 0.0 } mu[i] mean[i]
        Close.scalar $"std[{i}] ({report.Message})" { Abs = 0.0; Rel = 0.01 } sigma[i] std[i]
