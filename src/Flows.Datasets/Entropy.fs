namespace Flows.Datasets

open System
open Flows
open Flows.Tensors

/// Differential entropies (nats) of the toy data sets: the held-out NLL that a perfect model of the
/// data law reaches, so a trained flow's NLL minus the entropy is its KL divergence from the data.
[<RequireQualifiedAccess>]
module Entropy =

    /// −E log p from samples of p: the mean of −log p(x) and its standard error.
    let monteCarlo (logDensity: Tensor -> Tensor) (samples: Tensor) =
        let values = (logDensity (samples.cast Dtype.Float64)).toArray64()
        Guard.that (nameof samples) (values.Length >= 2) $"expected at least 2 samples, got {values.Length}"
        let mean = -(Array.average values)
        let variance = values |> Array.sumBy (fun v -> (-v - mean) ** 2.0) |> fun s -> s / float (values.Length - 1)
        mean, sqrt (variance / float values.Length)

    /// −∫ p log p over [−bound, bound]² by the midpoint rule on an n × n grid (float64); p must be
    /// normalised and negligible outside the box. Points where p underflows to 0 add nothing.
    let quadrature (bound: float) (n: int) (logDensity: Tensor -> Tensor) =
        Guard.positive (nameof n) n
        let h = 2.0 * bound / float n
        let axis = Tensor.linspace(-bound + h / 2.0, bound - h / 2.0, n, Dtype.Float64)
        let xs = axis.unsqueeze(1).expand([| n; n |]).reshape [| n * n |]
        let ys = axis.unsqueeze(0).expand([| n; n |]).reshape [| n * n |]
        let logP = (logDensity (Tensor.stack([| xs; ys |], 1))).toArray64()
        -(logP |> Array.sumBy (fun l -> if Double.IsFinite l then exp l * l else 0.0)) * h * h

    /// Two moons (normflows' TwoMoons target): quadrature of the exact density on [−4, 4]², 800 × 800 (≈ 1.571).
    let twoMoons = lazy (quadrature 4.0 800 Toy.twoMoonsLogDensity)

    /// 8 Gaussians: Monte Carlo of the exact mixture log-density on `n` seeded samples, with its
    /// standard error (the components overlap a little, so log 8 + 1 + log 2πσ² is only close).
    let eightGaussians (gen: Generator) (n: int) = monteCarlo Toy.eightGaussiansLogDensity (Toy.eightGaussians gen n Dtype.Float64)

    /// The checkerboard is uniform on 8 squares of side 2: log 32.
    let checkerboard = log 32.0

    /// Pinwheel, derived from its sampler: for each of the 5 arms, (a, b) ~ N(1, 0.3²) × N(0, 0.05²)
    /// maps to x = 2·R(θ)(a, b) with θ = θ_arm + 0.25·eᵃ, whose Jacobian determinant is
    /// 4(1 − 0.25·eᵃ·b) (R′ = R·J, J the quarter turn). The arms do not overlap (but for a
    /// probability below 10⁻³ near the centre), so H = log 5 + H(a) + H(b) + log 4 +
    /// E log|1 − 0.25·eᵃ·b|, the last term by the midpoint rule over ±8 standard deviations.
    let pinwheel =
        lazy
            (let gaussianEntropy (std: float) = 0.5 * log (2.0 * Math.PI * Math.E * std * std)
             let m = 400
             let aStd, bStd = 0.3, 0.05
             let ha, hb = 16.0 * aStd / float m, 16.0 * bStd / float m
             let density (v: float) (std: float) = exp (-0.5 * (v / std) ** 2.0) / (std * sqrt (2.0 * Math.PI))
             let mutable expectedLogDet = 0.0
             for i in 0 .. m - 1 do
                 let a = 1.0 - 8.0 * aStd + (float i + 0.5) * ha
                 for j in 0 .. m - 1 do
                     let b = -8.0 * bStd + (float j + 0.5) * hb
                     let w = density (a - 1.0) aStd * density b bStd * ha * hb
                     expectedLogDet <- expectedLogDet + w * log (abs (1.0 - 0.25 * exp a * b))
             log 5.0 + gaussianEntropy aStd + gaussianEntropy bStd + log 4.0 + expectedLogDet)
