/// Family laws of the residual block (i-ResNet / Residual Flow): the spectrally normalised g is a
/// contraction with constant below c, the fixed-point inverse converges at the rate cᵏ and fails
/// loudly otherwise, the power series tends to the exact log-det, and the Russian-roulette
/// estimate is unbiased.
module Flows.Properties.Bijectors.ResidualTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Bijectors.Residual
open Flows.Tensors

let private rowNorms (t: Tensor) = t.square().sum(1).sqrt().toArray64()

/// g of a random (perturbed, so normalisation is active) block, evaluation mode.
let private randomG (o: ResidualOptions) (seed: int) (dim: int) =
    let gen = Generator(uint64 seed)
    let b = createWith o gen Dtype.Float64 dim |> Entry.perturb gen 1.0
    network o (Bijector.withBuffers b.Params b) false

let private options = { defaults with Hidden = [ 12; 12 ] }

[<Fact>]
let ``the constrained g has a measured Lipschitz constant below c`` () =
    for activation in [ LipschitzActivation.LipSwish; LipschitzActivation.Elu; LipschitzActivation.Tanh ] do
        for seed in 1..4 do
            let o = { options with Activation = activation }
            let dim = 1 + seed % 3
            let g = randomG o seed dim
            let gen = Generator(uint64 (100 + seed))
            let a = gen.normal([| 2000; dim |], 0.0, 2.0, Dtype.Float64)
            // nearby pairs probe the local slope, far ones the global one
            let b = a + gen.normal([| 2000; dim |], 0.0, 1.0, Dtype.Float64) * gen.uniform([| 2000; 1 |], 1e-4, 3.0, Dtype.Float64)
            let num, den = rowNorms (g a - g b), rowNorms (a - b)
            let worst = Array.map2 (fun n d -> n / d) num den |> Array.max
            Assert.True(worst <= o.Coefficient + 1e-9, $"{activation}, seed {seed}: measured Lipschitz ratio {worst} > c = {o.Coefficient}")
            // the normalisation binds: the bound is not vacuous because the weights are large
            Assert.True(worst > 0.05, $"{activation}, seed {seed}: g is nearly constant (ratio {worst})")

[<Fact>]
let ``the fixed-point inverse converges at the predicted linear rate`` () =
    for seed in 1..5 do
        let dim = 1 + seed % 3
        let g = randomG options seed dim
        let y = (Generator(uint64 (50 + seed))).normal([| 16; dim |], 0.0, 2.0, Dtype.Float64)
        let xStar = fixedPoint 1e-13 10000 g y
        // the solution really solves x + g(x) = y
        Assert.True(((xStar + g xStar - y).abs().max().toScalar()) < 1e-11)
        let initial = rowNorms (iterate g y 0 - xStar)
        for k in [ 1; 2; 5; 10; 20 ] do
            let error = rowNorms (iterate g y k - xStar)
            Array.iteri2 (fun i e e0 ->
                Assert.True(e <= options.Coefficient ** float k * e0 + 1e-12, $"seed {seed}, row {i}, k = {k}: error {e} > c^k · {e0}")) error initial

[<Fact>]
let ``an inverse that cannot converge raises a clear error`` () =
    let gen = Generator 7UL
    let o = { options with MaxIterations = 1; Tolerance = 1e-14 }
    let b = createWith o gen Dtype.Float64 2 |> Entry.perturb gen 1.0
    let y = gen.normal([| 5; 2 |], 0.0, 2.0, Dtype.Float64)
    let error = Assert.Throws<InvalidOperationException>(fun () -> Bijector.inverse Context.none y b |> ignore)
    Assert.Contains("did not converge", error.Message)
    Assert.Contains("after 1 iterations", error.Message)
    // an expansive g (here 1.5·x, Lipschitz 1.5) diverges instead of returning a wrong point
    let diverging = Assert.Throws<InvalidOperationException>(fun () -> fixedPoint 1e-10 1000 (fun x -> x * 1.5) y |> ignore)
    Assert.Contains("contraction", diverging.Message)

[<Fact>]
let ``a coefficient of one or more is rejected`` () =
    let error = Assert.ThrowsAny<ArgumentException>(fun () -> createWith { defaults with Coefficient = 1.0 } (Generator 1UL) Dtype.Float64 2 |> ignore)
    Assert.Contains("(0, 1)", error.Message)

/// Exact log-dets and the D·c^{n+1}/((n+1)(1−c)) truncation bound, averaged over Hutchinson probes.
[<Fact>]
let ``the power series converges to the exact log-det as terms are added`` () =
    for seed in 1..3 do
        let dim = 1 + seed % 3
        let g = randomG options seed dim
        let x = (Generator(uint64 (70 + seed))).normal([| 4; dim |], 0.0, 1.5, Dtype.Float64)
        let _, exact = exactLogDet g x
        let exact = exact.toArray64()
        // many probes (identical for every n) average the Hutchinson noise away, leaving the truncation
        let probes = 4000
        let xs = Tensor.cat(Array.create probes x, 0)
        let estimate n =
            let total = (powerSeriesLogDet (Generator(uint64 (900 + seed))) n g xs).reshape([| probes; 4 |]).mean(0)
            total.toArray64()
        let c = options.Coefficient
        let errors =
            [ for n in [ 1; 2; 4; 8; 16 ] ->
                  let e = Array.map2 (fun a b -> abs (a - b)) (estimate n) exact |> Array.max
                  let bound = float dim * c ** float (n + 1) / (float (n + 1) * (1.0 - c))
                  n, e, bound ]
        for n, e, bound in errors do
            // the truncation bound plus the probes' standard error (|tr| terms are at most D·cᵏ)
            Assert.True(e <= bound + 0.15 * float dim, $"seed {seed}, n = {n}: error {e} above {bound}")
        let _, first, _ = errors.Head
        let _, last, _ = List.last errors
        Assert.True(last < first || last < 1e-3, $"seed {seed}: error did not decrease ({first} → {last})")

/// Exact truncation (no probe noise): with the full trace tr(Jᵏ) the series error is below the
/// bound D·c^{n+1}/((n+1)(1−c)) for every n and decreases.
[<Fact>]
let ``the exact-trace power series error falls within the c-power bound`` () =
    for seed in 1..3 do
        let dim = 1 + seed % 3
        let g = randomG options seed dim
        let x = (Generator(uint64 (70 + seed))).normal([| 4; dim |], 0.0, 1.5, Dtype.Float64)
        let a, exact = exactLogDet g x
        let j = a - Tensor.eye(dim, Dtype.Float64)
        let exact = exact.toArray64()
        let mutable power = Tensor.eye(dim, Dtype.Float64).unsqueeze(0).expand([| 4; dim; dim |])
        let mutable series = Array.zeroCreate 4
        let mutable previous = infinity
        for k in 1..24 do
            power <- power.matmul j
            let trace = power.diagonal().sum(-1).toArray64()
            series <- Array.map2 (fun s t -> s + (if k % 2 = 1 then 1.0 else -1.0) * t / float k) series trace
            let error = Array.map2 (fun s e -> abs (s - e)) series exact |> Array.max
            let bound = float dim * options.Coefficient ** float (k + 1) / (float (k + 1) * (1.0 - options.Coefficient))
            Assert.True(error <= bound + 1e-12, $"seed {seed}, n = {k}: error {error} above bound {bound}")
            if k % 4 = 0 then
                Assert.True(error <= previous + 1e-12, $"seed {seed}: error rose to {error} at n = {k}")
                previous <- error

[<Fact>]
let ``the Russian-roulette estimate is unbiased`` () =
    for seed in 1..3 do
        let dim = 1 + seed % 3
        let g = randomG options seed dim
        let x = (Generator(uint64 (30 + seed))).normal([| 3; dim |], 0.0, 1.5, Dtype.Float64)
        let _, exact = exactLogDet g x
        let gen = Generator(uint64 (500 + seed))
        let draws = 3000
        let samples = Array.init draws (fun _ -> (rouletteLogDet gen 2 0.5 g g x).toArray64())
        for row in 0..2 do
            let values = samples |> Array.map (fun s -> s[row])
            let mean = Array.average values
            let sd = sqrt ((values |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (draws - 1))
            let se = sd / sqrt (float draws)
            let truth = exact.toArray64()[row]
            Assert.True(abs (mean - truth) <= 4.0 * se + 1e-12, $"seed {seed}, row {row}: mean {mean} ± {se} vs exact {truth}")

[<Fact>]
let ``the estimated modes invert like the exact mode and their inverse gradient matches`` () =
    let gen = Generator 21UL
    let exactBlock = createWith options gen Dtype.Float64 3 |> Entry.perturb gen 1.0
    let estimated = { createWith { options with LogDet = ResidualLogDet.RussianRoulette(2, 0.5) } (Generator 21UL) Dtype.Float64 3 with Params = exactBlock.Params; Buffers = exactBlock.Buffers }
    let y = gen.normal([| 6; 3 |], 0.0, 1.5, Dtype.Float64)
    let x1, _ = Bijector.inverse Context.none y exactBlock
    let x2, _ = Bijector.inverse Context.none y estimated
    Assert.True(((x1 - x2).abs().max().toScalar()) < 1e-9)
    // d(Σ x)/dy through the Newton step: dense (I + J)⁻¹ against the Neumann series
    let grad (b: Bijector) = Ad.grad (fun y -> (fst (Bijector.inverse Context.none y b)).sum()) y
    let d = (grad exactBlock - grad estimated).abs().max().toScalar()
    Assert.True(d < 1e-3, $"inverse gradients differ by {d}")

[<Fact>]
let ``training observations refresh the power-iteration vectors`` () =
    let gen = Generator 4UL
    let b = create gen Dtype.Float64 2 |> Entry.perturb gen 1.0
    let hook = b.Observe.Value
    let _, buffers = hook b.Params b.Buffers Context.training (gen.normal([| 4; 2 |], dtype = Dtype.Float64))
    Assert.True(((buffers["0.u"] - b.Buffers["0.u"]).abs().max().toScalar()) > 0.0)
    let _, unchanged = hook b.Params b.Buffers Context.none (gen.normal([| 4; 2 |], dtype = Dtype.Float64))
    Assert.Equal(0.0, (unchanged["0.u"] - b.Buffers["0.u"]).abs().max().toScalar())

[<Fact>]
let ``the Russian-roulette Neumann gradient is unbiased`` () =
    let dim = 2
    let g = randomG options 3 dim
    let x = (Generator 33UL).normal([| 2; dim |], 0.0, 1.5, Dtype.Float64)
    let exact = (Ad.grad (fun x -> (snd (exactLogDet g x)).sum()) x).toArray64()
    let gen = Generator 77UL
    let draws = 3000
    let samples = Array.init draws (fun _ -> (Ad.grad (fun x -> (rouletteLogDet gen 2 0.5 g g x).sum()) x).toArray64())
    for i in 0 .. exact.Length - 1 do
        let values = samples |> Array.map (fun s -> s[i])
        let mean = Array.average values
        let sd = sqrt ((values |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (draws - 1))
        let se = sd / sqrt (float draws)
        Assert.True(abs (mean - exact[i]) <= 4.0 * se + 1e-12, $"component {i}: mean gradient {mean} ± {se} vs exact {exact[i]}")
