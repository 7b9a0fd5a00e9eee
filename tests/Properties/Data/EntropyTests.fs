/// The toy data sets' entropies against independent estimates: Monte Carlo of the exact log-density
/// on the sampler's own draws, a closed form, a histogram on cells aligned with the support, and
/// the Kozachenko–Leonenko nearest-neighbour estimator on samples.
module Flows.Properties.Data.EntropyTests

open System
open Xunit
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// Fails unless `actual` is within `k` standard errors (plus `slack`) of `expected`.
let private within (what: string) (k: float) (standardError: float) (slack: float) (expected: float) (actual: float) =
    Close.scalar $"{what} ({k} standard errors of {standardError} + {slack})" { Abs = k * standardError + slack; Rel = 0.0 } expected actual

/// Kozachenko–Leonenko (k = 1) in 2-D: ψ(N) − ψ(1) + log π + (2/N) Σ log εᵢ, εᵢ the distance from
/// row i to its nearest other row (brute force).
let private nearestNeighbourEntropy (samples: Tensor) =
    let xy = samples.toArray64()
    let n = xy.Length / 2
    let logDistances =
        Array.Parallel.init n (fun i ->
            let mutable best = Double.MaxValue
            for j in 0 .. n - 1 do
                if j <> i then
                    let dx, dy = xy[2 * i] - xy[2 * j], xy[2 * i + 1] - xy[2 * j + 1]
                    best <- min best (dx * dx + dy * dy)
            0.5 * log best)
    let digammaN = log (float n) - 1.0 / (2.0 * float n)
    let eulerGamma = 0.5772156649015329
    digammaN + eulerGamma + log Math.PI + 2.0 * Array.average logDistances

[<Fact>]
let ``The quadrature entropy of a Gaussian is its closed form`` () =
    let std = 0.7
    let logDensity = Targets.gaussianMixture [| [| 0.3; -0.2 |] |] std
    Close.scalar "H(N(μ, 0.49 I))" { Abs = 1e-6; Rel = 0.0 } (1.0 + log (2.0 * Math.PI * std * std)) (Entropy.quadrature 5.0 300 logDensity)

[<Fact>]
let ``Two moons: the quadrature entropy is 1.571 and Monte Carlo on exact samples agrees`` () =
    let quadrature = Entropy.twoMoons.Force()
    Close.scalar "two-moons entropy (the issue's 1.571)" { Abs = 5e-4; Rel = 0.0 } 1.571 quadrature
    let mc, se = Entropy.monteCarlo Toy.twoMoonsLogDensity (Toy.twoMoons (Generator 11UL) 100000 Dtype.Float64)
    within "two-moons Monte Carlo entropy" 4.0 se 0.0 quadrature mc

[<Fact>]
let ``8 Gaussians: Monte Carlo of the mixture entropy agrees with quadrature`` () =
    let mc, se = Entropy.eightGaussians (Generator 12UL) 100000
    let quadrature = Entropy.quadrature 5.0 400 Toy.eightGaussiansLogDensity
    within "8-Gaussians Monte Carlo entropy" 4.0 se 1e-4 quadrature mc
    // the overlap between neighbours lowers the entropy, by little
    let separated = log 8.0 + 1.0 + log (2.0 * Math.PI * 0.125)
    Assert.InRange(separated - quadrature, 0.0, 0.01)

[<Fact>]
let ``Checkerboard: a histogram on cells aligned with the squares gives log 32`` () =
    let n, cells, bound = 200000, 64, 4.0
    let xy = (Toy.checkerboard (Generator 13UL) n Dtype.Float64).toArray64()
    let counts = Array.zeroCreate<float> (cells * cells)
    for i in 0 .. n - 1 do
        let col = int ((xy[2 * i] + bound) / (2.0 * bound) * float cells)
        let row = int ((xy[2 * i + 1] + bound) / (2.0 * bound) * float cells)
        counts[row * cells + col] <- counts[row * cells + col] + 1.0
    let cellArea = (2.0 * bound / float cells) ** 2.0
    let plugIn = -(counts |> Array.sumBy (fun c -> if c = 0.0 then 0.0 else c / float n * log (c / float n / cellArea)))
    let occupied = counts |> Array.filter (fun c -> c > 0.0) |> Array.length
    Assert.Equal(cells * cells / 2, occupied)
    // the plug-in estimate is low by about (cells − 1)/2N = 0.005
    Close.scalar "checkerboard entropy" { Abs = 0.015; Rel = 0.0 } Entropy.checkerboard plugIn

[<Fact>]
let ``Pinwheel: the derived entropy agrees with the nearest-neighbour estimate`` () =
    let samples = Toy.pinwheel (Generator 14UL) 6000 Dtype.Float64
    Close.scalar "pinwheel entropy" { Abs = 0.05; Rel = 0.0 } (Entropy.pinwheel.Force()) (nearestNeighbourEntropy samples)
    // the same estimator, same sample size, on a law whose entropy is known another way
    let eight = nearestNeighbourEntropy (Toy.eightGaussians (Generator 15UL) 6000 Dtype.Float64)
    Close.scalar "8-Gaussians nearest-neighbour entropy" { Abs = 0.05; Rel = 0.0 } (fst (Entropy.eightGaussians (Generator 16UL) 100000)) eight
