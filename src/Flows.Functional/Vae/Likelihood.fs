namespace Flows.Vae

open System
open Flows.Tensors

/// The decoder's observation model p(x | z), read from the decoder's outputs for each row.
[<RequireQualifiedAccess>]
type Likelihood =
    /// Independent Bernoulli pixels (binary data): the decoder outputs one logit per dimension.
    | Bernoulli
    /// Independent Gaussians: the decoder outputs a mean and a log σ per dimension (2·D outputs);
    /// log σ = softplus(s + 5) − 5 ≥ −5, so the density cannot collapse onto a pixel.
    | Gaussian
    /// Independent Gaussians of fixed σ: the decoder outputs the mean.
    | GaussianFixed of sigma: float

/// Scoring and means of likelihoods.
[<RequireQualifiedAccess>]
module Likelihood =

    let private log2Pi = log (2.0 * Math.PI)

    /// Decoder outputs per row for data rows of `dim` values.
    let outputs (likelihood: Likelihood) (dim: int) =
        match likelihood with
        | Likelihood.Gaussian -> 2 * dim
        | Likelihood.Bernoulli
        | Likelihood.GaussianFixed _ -> dim

    let private gaussianParts (decoded: Tensor) =
        let dim = decoded.shape[1] / 2
        decoded.narrow(1, 0, dim), (decoded.narrow(1, dim, dim) + 5.0).softplus() - 5.0

    /// log p(x | z) per row from the decoder outputs [n; outputs] and data rows x [n; D].
    let logProb (likelihood: Likelihood) (decoded: Tensor) (x: Tensor) =
        let dim = float x.shape[1]
        match likelihood with
        | Likelihood.Bernoulli -> (x * decoded - decoded.softplus()).sum(1)
        | Likelihood.Gaussian ->
            let mean, logScale = gaussianParts decoded
            (((x - mean) * (-logScale).exp()).square() * -0.5 - logScale).sum(1) - 0.5 * dim * log2Pi
        | Likelihood.GaussianFixed sigma -> (x - decoded).square().sum(1) * (-0.5 / (sigma * sigma)) - dim * (log sigma + 0.5 * log2Pi)

    /// E[x | z] per row: Bernoulli probabilities or Gaussian means, [n; D].
    let mean (likelihood: Likelihood) (decoded: Tensor) =
        match likelihood with
        | Likelihood.Bernoulli -> decoded.sigmoid()
        | Likelihood.Gaussian -> fst (gaussianParts decoded)
        | Likelihood.GaussianFixed _ -> decoded
