namespace Flows.Distributions

open System
open Flows.Tensors

/// Unnormalised 2-D target log-densities on rows [n; 2] (differentiable), for reverse-KL fitting
/// and for the exact densities of toy data. `lse a b` is log(exp a + exp b), computed stably.
[<RequireQualifiedAccess>]
module Targets =

    let private col (i: int) (z: Tensor) = z.narrow(1, i, 1).squeeze 1

    let private lse (a: Tensor) (b: Tensor) = Tensor.stack([| a; b |], 1).logsumexp(1)

    let private bump (centre: float) (width: float) (x: Tensor) = ((x - centre) / width).square() * -0.5

    /// The two-moons density (normflows' TwoMoons), unnormalised:
    /// −½((‖z‖−2)/0.2)² + log(exp(−½((z₁−2)/0.3)²) + exp(−½((z₁+2)/0.3)²)).
    let twoMoons (z: Tensor) =
        let z1 = col 0 z
        bump 2.0 0.2 (z.norm 1) + lse (bump 2.0 0.3 z1) (bump -2.0 0.3 z1)

    /// Rezende & Mohamed 2015's ring target: a ring of radius 4 and width 0.4 with two modes at z₁ = ±2.
    let twoModeRing (z: Tensor) =
        let z1 = col 0 z
        bump 4.0 0.4 (z.norm 1) + lse (bump 2.0 0.8 z1) (bump -2.0 0.8 z1)

    let private w1 (z1: Tensor) = (z1 * (2.0 * Math.PI / 4.0)).sin()
    let private w2 (z1: Tensor) = (bump 1.0 0.6 z1).exp() * 3.0
    let private w3 (z1: Tensor) = ((z1 - 1.0) / 0.3).sigmoid() * 3.0

    /// Rezende & Mohamed (2015) energy U1 (a ring with two modes), as −U1.
    let u1 (z: Tensor) =
        let z1 = col 0 z
        bump 2.0 0.4 (z.norm 1) + lse (bump 2.0 0.6 z1) (bump -2.0 0.6 z1)

    /// Rezende & Mohamed energy U2 (a sine wave), as −U2.
    let u2 (z: Tensor) = bump 0.0 0.4 (col 1 z - w1 (col 0 z))

    /// Rezende & Mohamed energy U3 (two split sine waves), as −U3.
    let u3 (z: Tensor) =
        let z1, z2 = col 0 z, col 1 z
        let d = z2 - w1 z1
        lse (bump 0.0 0.35 d) (bump 0.0 0.35 (d + w2 z1))

    /// Rezende & Mohamed energy U4 (a sine wave and a sigmoid step), as −U4.
    let u4 (z: Tensor) =
        let z1, z2 = col 0 z, col 1 z
        let d = z2 - w1 z1
        lse (bump 0.0 0.4 d) (bump 0.0 0.35 (d + w3 z1))

    /// Log-density of an equal mixture of isotropic Gaussians N(centre_k, std² I), normalised.
    let gaussianMixture (centres: float[][]) (std: float) (z: Tensor) =
        let c = Tensor.ofArray(Array.concat centres, [| centres.Length; centres[0].Length |]).cast(z.dtype)
        let d = float centres[0].Length
        let perComponent = ((z.unsqueeze 1 - c) / std).square().sum(2) * -0.5
        perComponent.logsumexp(1) - log (float centres.Length) - d * log std - 0.5 * d * log (2.0 * Math.PI)

    /// A unnormalised log-density's log normaliser over the box [−b, b]², by the midpoint rule on
    /// an n × n grid in float64: the density must be negligible outside the box.
    let logNormaliser (bound: float) (n: int) (logDensity: Tensor -> Tensor) =
        let h = 2.0 * bound / float n
        let axis = Tensor.linspace(-bound + h / 2.0, bound - h / 2.0, n, Dtype.Float64)
        let xs = axis.unsqueeze(1).expand([| n; n |]).reshape [| n * n |]
        let ys = axis.unsqueeze(0).expand([| n; n |]).reshape [| n * n |]
        let grid = Tensor.stack([| xs; ys |], 1)
        (logDensity grid).logsumexp(0).toScalar() + 2.0 * log h
