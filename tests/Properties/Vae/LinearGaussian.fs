namespace Flows.Properties.Vae

open System
open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Vae

/// The linear-Gaussian model p(z) = N(0, I₂), p(x | z) = N(Wz + b, σ²I₄) with fixed W, b, σ, and its
/// answers by MathNet: x ~ N(b, WWᵀ + σ²I), the posterior N(A(x − b), Σ) with Σ = (I + WᵀW/σ²)⁻¹ and
/// A = ΣWᵀ/σ². W's columns are orthogonal, so Σ is diagonal: the true posterior is in every family
/// here (a diagonal Gaussian, with or without flow layers that start at or can reach the identity).
[<RequireQualifiedAccess>]
module LinearGaussian =

    let latent, dim, sigma = 2, 4, 0.5

    /// W = U·diag(1.5, 0.7) with U the orthonormal columns of a QR of a fixed matrix.
    let w =
        let m = Matrix<float>.Build.DenseOfArray(array2D [ [ 0.3; -1.2 ]; [ 1.1; 0.4 ]; [ -0.5; 0.9 ]; [ 0.8; 0.2 ] ])
        m.QR().Q.SubMatrix(0, dim, 0, latent) * Matrix<float>.Build.DenseOfDiagonalArray [| 1.5; 0.7 |]

    let b = Vector<float>.Build.DenseOfArray [| 0.5; -1.0; 0.25; 2.0 |]

    /// The posterior covariance Σ (diagonal) and the map A.
    let posteriorCovariance = (Matrix<float>.Build.DenseIdentity latent + w.TransposeThisAndMultiply w / (sigma * sigma)).Inverse()
    let posteriorMap = posteriorCovariance * w.Transpose() / (sigma * sigma)

    /// n points x drawn from the model (float64 rows [n; 4]).
    let data (gen: Generator) (n: int) =
        let z = gen.normal([| n; latent |], dtype = Dtype.Float64).toArray64()
        let noise = gen.normal([| n; dim |], 0.0, sigma, Dtype.Float64).toArray64()
        Tensor.ofArray(Array.init (n * dim) (fun k ->
            let i, j = k / dim, k % dim
            b[j] + w[j, 0] * z[i * latent] + w[j, 1] * z[i * latent + 1] + noise[k]), [| n; dim |])

    let private vectorOf (x: Tensor) (i: int) = Vector<float>.Build.DenseOfArray(x.toArray64()[i * dim .. (i + 1) * dim - 1])

    /// log p(x) of each row, log N(x; b, WWᵀ + σ²I) by a Cholesky factor.
    let logMarginal (x: Tensor) =
        let c = w * w.Transpose() + Matrix<float>.Build.DenseIdentity dim * (sigma * sigma)
        let chol = c.Cholesky()
        Array.init x.shape[0] (fun i ->
            let d = vectorOf x i - b
            -0.5 * (d * chol.Solve d) - 0.5 * chol.DeterminantLn - 0.5 * float dim * log (2.0 * Math.PI))

    /// The ELBO of each row in closed form for q = N(m, diag v): E_q log p(x | z) + E_q log p(z) + H(q).
    let gaussianElbo (x: Tensor) (mean: int -> Vector<float>) (variance: Vector<float>) =
        Array.init x.shape[0] (fun i ->
            let m = mean i
            let residual = vectorOf x i - w * m - b
            let trace = (w * Matrix<float>.Build.DenseOfDiagonalVector variance * w.Transpose()).Trace()
            let likelihood = -0.5 * float dim * log (2.0 * Math.PI * sigma * sigma) - (residual * residual + trace) / (2.0 * sigma * sigma)
            let prior = -0.5 * float latent * log (2.0 * Math.PI) - 0.5 * (m * m + variance.Sum())
            let entropy = 0.5 * float latent * log (2.0 * Math.PI * Math.E) + 0.5 * (variance.PointwiseLog().Sum())
            likelihood + prior + entropy)

    /// The true posterior mean A(x − b) of row i of x.
    let posteriorMean (x: Tensor) (i: int) = posteriorMap * (vectorOf x i - b)

    /// A float64 VAE for this model: the features are x itself (no hidden layers), so the linear heads
    /// can express the true posterior; the decoder is the fixed map z ↦ Wz + b with σ fixed.
    let vae (seed: uint64) (posterior: Posterior) =
        let spec = { Event = [| dim |]; Latent = latent; Hidden = []; Activation = Activation.Tanh; Architecture = Architecture.Mlp; Posterior = posterior; Likelihood = Likelihood.GaussianFixed sigma }
        let weight = Tensor.ofArray(w.Transpose().ToRowMajorArray(), [| latent; dim |])
        let bias = Tensor.ofArray(b.ToArray())
        { Vae.create (Generator seed) Dtype.Float64 spec with Decoder = Network.constant dim (fun z -> z.matmul weight + bias) }

    /// The heads set to give q(z | x) = N(A(x − b), diag(scale² · Σ)): the true posterior at scale 1.
    let withPosteriorHeads (scale: float) (model: Flows.Vae.Vae) =
        let a = Tensor.ofArray(posteriorMap.ToRowMajorArray(), [| latent; dim |])
        let logScale = Array.init latent (fun j -> 0.5 * log posteriorCovariance[j, j] + log scale)
        { model with
            Heads =
              Params.ofList
                  [ "mean.weight", a
                    "mean.bias", -(a.matmul(Tensor.ofArray(b.ToArray())))
                    "logScale.weight", Tensor.zeros([| latent; dim |], Dtype.Float64)
                    "logScale.bias", Tensor.ofArray logScale ] }
