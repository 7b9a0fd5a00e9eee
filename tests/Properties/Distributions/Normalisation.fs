/// Base distributions and toy targets in 2-D, float64: each density integrates to 1 by grid
/// quadrature, samples have the closed-form (or quadrature) moments within a few standard errors,
/// mixture draws pick components at the weights' rates, and a seed fixes the samples.
module Flows.Properties.Distributions.Normalisation

open System
open Xunit
open FsCheck.FSharp
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// Draws per moment check: standard errors are about 1/140 of the spread.
let private n = 20000

/// Midpoint-rule nodes of an m × m grid on [−bound, bound]² as rows [m²; 2], with the cell area.
/// Written here, apart from Targets.logNormaliser, so the two quadratures check each other.
let private midpoints (bound: float) (m: int) =
    let h = 2.0 * bound / float m
    let axis = Array.init m (fun i -> -bound + (float i + 0.5) * h)
    let points = Array.init (2 * m * m) (fun k -> if k % 2 = 0 then axis[(k / 2) % m] else axis[(k / 2) / m])
    Tensor.ofArray(points, [| m * m; 2 |]), h * h

/// ∫ exp(logDensity) · f over [−bound, bound]² by the midpoint rule on an m × m grid.
let private integrate (bound: float) (m: int) (logDensity: Tensor -> Tensor) (f: float -> float -> float) =
    let grid, area = midpoints bound m
    let p = (logDensity grid).exp().toArray64()
    let xy = grid.toArray64()
    Array.init p.Length (fun i -> if p[i] = 0.0 then 0.0 else p[i] * f xy[2 * i] xy[2 * i + 1]) |> Array.sum |> (*) area

/// Fails unless `actual` is within 5 standard errors of `expected`.
let private within what (expected: float) (standardError: float) (actual: float) =
    Close.scalar $"{what} (5 standard errors of {standardError})" { Abs = 5.0 * standardError; Rel = 0.0 } expected actual

/// The mean of f(i) over the rows i of a flattened [n; 2] sample, with its standard error from
/// the spread of those values (so no fourth moment of the law is needed).
let private meanAndError (rows: float[]) (f: int -> float) =
    let values = Array.init (rows.Length / 2) f
    let m = Array.average values
    let var = values |> Array.averageBy (fun v -> (v - m) * (v - m))
    m, sqrt (var / float values.Length)

/// Checks the sample mean vector and covariance matrix of 2-D rows against `mean` and `cov`;
/// each entry's standard error comes from the sample (products of centred coordinates).
let private checkMoments (what: string) (mean: float[]) (cov: float[,]) (samples: Tensor) =
    let xs = samples.toArray64()
    let at i j = xs[2 * i + j]
    for j in 0 .. 1 do
        let m, se = meanAndError xs (fun i -> at i j)
        within $"{what}: mean[{j}]" mean[j] se m
    let m = Array.init 2 (fun j -> fst (meanAndError xs (fun i -> at i j)))
    for j in 0 .. 1 do
        for k in j .. 1 do
            let c, se = meanAndError xs (fun i -> (at i j - m[j]) * (at i k - m[k]))
            within $"{what}: cov[{j},{k}]" cov[j, k] se c

let private logProbOf (d: Distribution) = fun (z: Tensor) -> d.LogProb d.Params z

/// Locations: N(0, 1) draws clamped to [−3, 3], so that the quadrature boxes below hold the mass.
let private locations (g: Generator) (shape: int[]) = (Draw.normal g shape).clamp(-3.0, 3.0)

/// A diagonal normal with loc ~ N(0, 1) clamped to [−3, 3] and logScale ~ U(−0.5, 0.5).
let private perturbedDiagonal (seed: int) =
    let g = Draw.generator seed
    let d = Distribution.diagonalNormal [| 2 |] Dtype.Float64
    { d with Params = d.Params.With [ "loc", locations g [| 2 |]; "logScale", Draw.uniform g -0.5 0.5 [| 2 |] ] }

/// A k-component mixture with locs as above, logits ~ N(0, 1), logScales ~ U(−0.5, 0.5).
let private perturbedMixture (seed: int) (k: int) =
    let g = Draw.generator seed
    let d = Distribution.gaussianMixture (locations g [| k; 2 |]) 1.0
    { d with Params = d.Params.With [ "logits", Draw.normal g [| k |]; "logScales", Draw.uniform g -0.5 0.5 [| k; 2 |] ] }

let private weightsOf (d: Distribution) = d.Params["logits"].softmax(0).toArray64()
let private locsOf (d: Distribution) = d.Params["locs"].toArray64()
let private scalesOf (d: Distribution) = d.Params["logScales"].exp().toArray64()

// Box and grid of the Gaussian integrals: every location is within 3 of the origin and every
// scale below e^0.5 < 1.65, so [−20, 20]² leaves out less than P(|N(0, 1)| > 10) ≈ 1e-23 of the mass; a step of 0.05 is under 0.1 of the smallest scale
// (e^−0.5 ≈ 0.61), where the midpoint rule's error on a Gaussian, ~exp(−2π²σ²/h²), is nil.
let private gaussianBound, gaussianGrid = 20.0, 800

/// Quadrature of a normalised smooth density: rounding of 640,000 terms, far below 1e-9.
let private quadrature = { Abs = 1e-9; Rel = 0.0 }

[<Fact>]
let ``the standard normal's density integrates to one`` () =
    let d = Distribution.standardNormal [| 2 |] Dtype.Float64
    Close.scalar "∫ standard normal" quadrature 1.0 (integrate gaussianBound gaussianGrid (logProbOf d) (fun _ _ -> 1.0))

[<Fact>]
let ``a perturbed diagonal normal's density integrates to one`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let d = perturbedDiagonal seed
        Close.scalar "∫ diagonal normal" quadrature 1.0 (integrate gaussianBound gaussianGrid (logProbOf d) (fun _ _ -> 1.0)))

[<Fact>]
let ``a perturbed Gaussian mixture's density integrates to one`` () =
    Gens.check 5 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, k) ->
        let d = perturbedMixture seed k
        Close.scalar "∫ gaussian mixture" quadrature 1.0 (integrate gaussianBound gaussianGrid (logProbOf d) (fun _ _ -> 1.0)))

[<Fact>]
let ``the uniform box's density integrates to one`` () =
    // Box edges on multiples of 0.1 fall on cell boundaries of a grid of step 0.01 on [−3, 3]²,
    // where the midpoint rule counts whole cells and is exact up to rounding.
    Gens.check 5 (Gen.zip (Gen.choose (-20, 10)) (Gen.choose (1, 15))) (fun (low, width) ->
        let low, high = float low / 10.0, float (low + width) / 10.0
        let d = Distribution.uniformBox [| 2 |] low high Dtype.Float64
        Close.scalar $"∫ uniform on [{low}, {high}]²" quadrature 1.0 (integrate 3.0 600 (logProbOf d) (fun _ _ -> 1.0)))

[<Fact>]
let ``Targets.logNormaliser agrees with an independent midpoint rule on a Gaussian mixture`` () =
    let d = perturbedMixture 17 3
    let own = log (integrate gaussianBound gaussianGrid (logProbOf d) (fun _ _ -> 1.0))
    Close.scalar "log ∫ mixture" quadrature own (Targets.logNormaliser 16.0 700 (logProbOf d))

[<Fact>]
let ``standard normal samples have mean zero and identity covariance`` () =
    Gens.check 3 Gens.seed (fun seed ->
        let d = Distribution.standardNormal [| 2 |] Dtype.Float64
        checkMoments "standard normal" [| 0.0; 0.0 |] (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) (Distribution.sample d d.Params (Draw.generator seed) n))

[<Fact>]
let ``diagonal normal samples have mean loc and covariance diag(exp(2 logScale))`` () =
    Gens.check 3 Gens.seed (fun seed ->
        let d = perturbedDiagonal seed
        let loc = d.Params["loc"].toArray64()
        let var = d.Params["logScale"].toArray64() |> Array.map (fun s -> exp (2.0 * s))
        checkMoments "diagonal normal" loc (array2D [ [ var[0]; 0.0 ]; [ 0.0; var[1] ] ]) (Distribution.sample d d.Params (Draw.generator (seed + 1)) n))

[<Fact>]
let ``uniform box samples stay in the box with the uniform law's moments`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.zip (Gen.choose (-20, 10)) (Gen.choose (1, 15)))) (fun (seed, (low, width)) ->
        let low, high = float low / 10.0, float (low + width) / 10.0
        let d = Distribution.uniformBox [| 2 |] low high Dtype.Float64
        let samples = Distribution.sample d d.Params (Draw.generator seed) n
        if not (samples.toArray64() |> Array.forall (fun v -> v >= low && v < high)) then
            failwith $"a sample fell outside [{low}, {high})²"
        let mid, var = (low + high) / 2.0, (high - low) ** 2.0 / 12.0
        checkMoments "uniform box" [| mid; mid |] (array2D [ [ var; 0.0 ]; [ 0.0; var ] ]) samples)

[<Fact>]
let ``Gaussian mixture samples have the mixture's mean and covariance`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 4))) (fun (seed, k) ->
        let d = perturbedMixture seed k
        let w, locs, scales = weightsOf d, locsOf d, scalesOf d
        // Law of total expectation and variance: E = Σ w μ, Cov = Σ w (diag σ² + μ μᵀ) − E Eᵀ.
        let mean = Array.init 2 (fun j -> Array.init k (fun c -> w[c] * locs[2 * c + j]) |> Array.sum)
        let second j l =
            Array.init k (fun c ->
                w[c] * ((if j = l then scales[2 * c + j] ** 2.0 else 0.0) + locs[2 * c + j] * locs[2 * c + l]))
            |> Array.sum
        let cov = Array2D.init 2 2 (fun j l -> second j l - mean[j] * mean[l])
        checkMoments "gaussian mixture" mean cov (Distribution.sample d d.Params (Draw.generator (seed + 1)) n))

[<Fact>]
let ``Gaussian mixture samples land in each component at its weight's rate`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let k = 4
        let g = Draw.generator seed
        // Components 10 apart with scales below 0.5: a draw is nearer another centre with
        // probability below P(N(0, 1) > 10) ≈ 1e-23, so the nearest centre names the component.
        let locs = Tensor.ofArray(Toy.polygonCentres k 7.1 |> Array.concat, [| k; 2 |])
        let d0 = Distribution.gaussianMixture locs 0.3
        let d = { d0 with Params = d0.Params.With [ "logits", Draw.normal g [| k |] * 1.5; "logScales", Draw.uniform g (log 0.3 - 1.0) (log 0.3 + 0.5) [| k; 2 |] ] }
        let w, centres = weightsOf d, locsOf d
        let xs = (Distribution.sample d d.Params g n).toArray64()
        let counts = Array.zeroCreate k
        for i in 0 .. n - 1 do
            let distance c = (xs[2 * i] - centres[2 * c]) ** 2.0 + (xs[2 * i + 1] - centres[2 * c + 1]) ** 2.0
            let nearest = [ 0 .. k - 1 ] |> List.minBy distance
            counts[nearest] <- counts[nearest] + 1
        for c in 0 .. k - 1 do
            within $"rate of component {c}" w[c] (sqrt (w[c] * (1.0 - w[c]) / float n)) (float counts[c] / float n))

[<Fact>]
let ``the same seed gives the same samples and another seed gives others`` () =
    let distributions =
        [ Distribution.standardNormal [| 2 |] Dtype.Float64
          perturbedDiagonal 3
          Distribution.uniformBox [| 2 |] -1.0 2.0 Dtype.Float64
          perturbedMixture 5 3 ]
    Gens.check 10 Gens.seed (fun seed ->
        for d in distributions do
            let draw (s: int) = (Distribution.sample d d.Params (Draw.generator s) 50).toArray64()
            Close.arrays $"{d.Name}: same seed" { Abs = 0.0; Rel = 0.0 } (draw seed) (draw seed)
            if draw seed = draw (seed ^^^ 1) then failwith $"{d.Name}: seeds {seed} and {seed ^^^ 1} gave the same samples")

// The two-moons ring has radius 2 and width 0.2 and its modes sit at z₁ = ±2 with width 0.3: the
// density is below e^−70 of its peak outside [−4.5, 4.5]², and a step of 0.01 is 1/20 of the
// ring's width: the integrand is smooth wherever it is not negligible, and the midpoint rule's
// error on a Gaussian profile of width σ at step h is about 2·exp(−2π²σ²/h²), nil here.
let private moonsBound, moonsGrid = 4.5, 900

[<Fact>]
let ``the normalised two-moons density integrates to one`` () =
    Close.scalar "∫ two moons" quadrature 1.0 (integrate moonsBound moonsGrid Toy.twoMoonsLogDensity (fun _ _ -> 1.0))

[<Fact>]
let ``the normalised two-moons entropy is the 1.571-nat floor the issue quotes`` () =
    // −∫ p log p, with log p evaluated at each node; the quoted floor is rounded to 3 decimals,
    // so it can differ from the exact entropy by up to 5e-4, and the quadrature adds far less.
    let grid, area = midpoints moonsBound moonsGrid
    let logP = (Toy.twoMoonsLogDensity grid).toArray64()
    let entropy = -(logP |> Array.sumBy (fun l -> if Double.IsNegativeInfinity l then 0.0 else exp l * l)) * area
    Close.scalar "two-moons entropy" { Abs = 5e-4; Rel = 0.0 } 1.571 entropy

[<Fact>]
let ``two-moons samples have the moments of the density`` () =
    let moment f = integrate moonsBound moonsGrid Toy.twoMoonsLogDensity f
    let samples = (Toy.twoMoons (Generator 31UL) n Dtype.Float64).toArray64()
    let check what (f: float -> float -> float) =
        let m, se = meanAndError samples (fun i -> f samples[2 * i] samples[2 * i + 1])
        within $"two moons: {what}" (moment f) se m
    check "E[x]" (fun x _ -> x)
    check "E[y]" (fun _ y -> y)
    check "E[x²]" (fun x _ -> x * x)
    check "E[y²]" (fun _ y -> y * y)

[<Fact>]
let ``Targets.gaussianMixture integrates to one`` () =
    Gens.check 5 (Gen.zip Gens.seed (Gen.choose (1, 8))) (fun (seed, k) ->
        let g = Draw.generator seed
        let centres = (locations g [| k; 2 |]).toArray64() |> Array.chunkBySize 2
        let std = 0.3 + 0.7 * (Draw.uniform g 0.0 1.0 [| 1 |]).toScalar()
        // Centres within 3 of the origin and std ≤ 1: [−16, 16]² leaves out < P(|N| > 13); step 0.04 ≤ std/7.
        Close.scalar $"∫ {k} gaussians of std {std}" quadrature 1.0 (integrate 16.0 800 (Targets.gaussianMixture centres std) (fun _ _ -> 1.0)))

[<Fact>]
let ``Targets.gaussianMixture integrates to one for the eight-Gaussians data`` () =
    let logDensity = Targets.gaussianMixture (Toy.polygonCentres 8 (4.0 / sqrt 2.0)) (0.5 / sqrt 2.0)
    Close.scalar "∫ eight gaussians" quadrature 1.0 (integrate 6.0 600 logDensity (fun _ _ -> 1.0))
