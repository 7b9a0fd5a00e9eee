/// `Objectives.logPartition` (importance-sampled log Z and its effective sample size) against
/// independent answers: Gauss–Legendre quadrature on the plane, the Gaussian closed form
/// (2π)^{d/2}|Σ|^{1/2}·scale, and the ESS (Σw)²/Σw² recomputed from the same weights.
module Flows.Properties.Training.LogPartitionTests

open System
open Xunit
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Integration
open Flows
open Flows.Distributions
open Flows.Training
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// The draws logPartition makes (same generator seed) and their log-weights log p̃ − log q.
let private logWeights (seed: uint64) (n: int) (target: Tensor -> Tensor) (flow: Flow) =
    let x, logQ = Flow.sampleAndLogProb Context.none (Generator seed) n flow
    Array.map2 (-) ((target x).toArray64()) (logQ.toArray64())

/// log of the mean weight, its standard error (delta method: sd(w)/(mean(w)·√n)), and the ESS.
let private summarise (logW: float[]) =
    let top = Array.max logW
    let w = logW |> Array.map (fun l -> exp (l - top))
    let n = float w.Length
    let mean = Array.average w
    let sd = sqrt ((w |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / (n - 1.0))
    let ess = (Array.sum w) ** 2.0 / (w |> Array.sumBy (fun v -> v * v))
    top + log mean, sd / (mean * sqrt n), ess

/// ∫∫ exp(logDensity) over [−b, b]² by an `order`-point Gauss–Legendre rule per axis (MathNet).
let private gaussLegendre (bound: float) (order: int) (logDensity: Tensor -> Tensor) =
    let rule = GaussLegendreRule(-bound, bound, order)
    let points = [| for a in rule.Abscissas do for b in rule.Abscissas -> [| a; b |] |]
    let weights = [| for wa in rule.Weights do for wb in rule.Weights -> wa * wb |]
    let values = (logDensity (Tensor.ofArray(Array.concat points, [| points.Length; 2 |]))).toArray64()
    log (Array.fold2 (fun s w v -> s + w * exp v) 0.0 weights values)

[<Fact>]
let ``log Z of an unnormalised planar target matches Gauss-Legendre quadrature`` () =
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) []
    for name, target in [ "two moons", Targets.twoMoons; "u1", Targets.u1 ] do
        // the box [−6, 6]² holds all but e^-18 of each target's mass; 160² nodes resolve width 0.2
        let exact = gaussLegendre 6.0 160 target
        Close.scalar $"{name}: quadrature at two orders" { Abs = 1e-8; Rel = 0.0 } (gaussLegendre 6.0 240 target) exact
        let n = 40000
        let logZ, ess = Objectives.logPartition (Generator 5UL) n target flow
        let expectedLogZ, se, expectedEss = summarise (logWeights 5UL n target flow)
        Close.scalar $"{name}: log Z against the weights' log-mean" Tolerance.float64 expectedLogZ logZ
        Close.scalar $"{name}: ESS against (Σw)²/Σw²" Tolerance.float64 expectedEss ess
        Assert.True(se < 0.02, $"{name}: standard error {se} of log Z too large to test anything")
        Assert.True(abs (logZ - exact) <= 4.0 * se, $"{name}: log Z {logZ} ± {se} against quadrature {exact}")

/// An unnormalised N(μ, Σ)·scale in three dimensions, its log-density and its closed-form log Z.
let private gaussian () =
    let sigma = Matrix<float>.Build.DenseOfRowArrays([| [| 0.6; 0.2; -0.1 |]; [| 0.2; 0.5; 0.1 |]; [| -0.1; 0.1; 0.4 |] |])
    let mu = Tensor.ofArray([| 0.3; -0.2; 0.5 |], [| 1; 3 |])
    let precision = Tensor.ofArray(sigma.Inverse().ToRowMajorArray(), [| 3; 3 |])
    let scale = 7.5
    let target (x: Tensor) =
        let u = x - mu
        (u.matmul precision * u).sum(1) * -0.5 + log scale
    target, log scale + 1.5 * log (2.0 * Math.PI) + 0.5 * log (sigma.Determinant())

[<Fact>]
let ``log Z of an unnormalised Gaussian matches its closed form`` () =
    let target, exact = gaussian ()
    // N(0, I) has heavier tails than N(μ, Σ) here (Σ < I), so the weights are bounded
    let flow = Flow.create (Distribution.standardNormal [| 3 |] Dtype.Float64) []
    let n = 40000
    let logZ, ess = Objectives.logPartition (Generator 9UL) n target flow
    let expectedLogZ, se, expectedEss = summarise (logWeights 9UL n target flow)
    Close.scalar "log Z against the weights' log-mean" Tolerance.float64 expectedLogZ logZ
    Close.scalar "ESS against (Σw)²/Σw²" Tolerance.float64 expectedEss ess
    Assert.True(se < 0.02, $"standard error {se} of log Z too large to test anything")
    Assert.True(abs (logZ - exact) <= 4.0 * se, $"log Z {logZ} ± {se} against the closed form {exact}")
    Assert.True(ess < float n * 0.9, $"ESS {ess} of a mismatched flow should be well below n = {n}")

[<Fact>]
let ``a flow equal to the normalised target gives the closed-form log Z exactly and ESS n`` () =
    let loc, std, scale = [| 0.4; -1.1 |], [| 0.7; 1.8 |], 0.25
    let target (x: Tensor) =
        let u = (x - Tensor.ofArray(loc, [| 1; 2 |])) / Tensor.ofArray(std, [| 1; 2 |])
        u.square().sum(1) * -0.5 + log scale
    let exact = log scale + log (2.0 * Math.PI) + Array.sumBy log std
    let normal = Distribution.diagonalNormal [| 2 |] Dtype.Float64
    let fitted = { normal with Params = Params.ofList [ "loc", Tensor.ofArray(loc, [| 2 |]); "logScale", Tensor.ofArray(Array.map log std, [| 2 |]) ] }
    let n = 500
    let logZ, ess = Objectives.logPartition (Generator 3UL) n target (Flow.create fitted [])
    Close.scalar "log Z of a perfect fit" Tolerance.float64 exact logZ
    Close.scalar "ESS of a perfect fit" Tolerance.float64 (float n) ess
