namespace Flows.Data

open System
open Flows
open Flows.Tensors

/// A full-covariance Gaussian fitted to rows: the mean, the covariance shrunk towards a scaled
/// identity by Ledoit & Wolf (2004), its lower Cholesky factor, and the shrinkage used.
type GaussianFit =
    { Mean: float[]
      Covariance: float[,]
      Cholesky: float[,]
      Shrinkage: float }

/// The Gaussian every default fit is compared with (and starts from).
[<RequireQualifiedAccess>]
module GaussianFit =

    /// Lower Cholesky factor of a symmetric positive-definite matrix.
    let cholesky (a: float[,]) =
        let d = Array2D.length1 a
        let l = Array2D.zeroCreate d d
        for j in 0 .. d - 1 do
            let mutable s = a[j, j]
            for k in 0 .. j - 1 do s <- s - l[j, k] * l[j, k]
            if not (s > 0.0) then invalidArg (nameof a) $"the covariance is not positive definite (pivot {j} is {s})"
            l[j, j] <- sqrt s
            for i in j + 1 .. d - 1 do
                let mutable t = a[i, j]
                for k in 0 .. j - 1 do t <- t - l[i, k] * l[j, k]
                l[i, j] <- t / l[j, j]
        l

    /// The Ledoit–Wolf estimate from rows [n; d] (read in float64): Σ = (1 − s)·S + s·μ·I with S the
    /// maximum-likelihood covariance, μ = tr S / d, and s the shrinkage that minimises the expected
    /// Frobenius loss, estimated from the rows (so it falls as rows grow: few rows, strong shrinkage).
    let ledoitWolf (rows: Tensor) =
        Guard.that (nameof rows) (rows.dim = 2 && rows.shape[0] >= 2) $"expected [n; d] rows with n ≥ 2, got shape {Shape.show rows.shape}"
        let n, d = rows.shape[0], rows.shape[1]
        let x = (rows.cast Dtype.Float64).toArray64()
        let mean = Array.init d (fun j -> Seq.sum (seq { for i in 0 .. n - 1 -> x[i * d + j] }) / float n)
        for i in 0 .. n - 1 do
            for j in 0 .. d - 1 do x[i * d + j] <- x[i * d + j] - mean[j]
        let s = Array2D.zeroCreate d d
        let mutable fourth = 0.0 // Σ_k ‖x_k‖⁴, for the variance of the sample covariance
        for i in 0 .. n - 1 do
            let mutable norm2 = 0.0
            for a in 0 .. d - 1 do
                let xa = x[i * d + a]
                norm2 <- norm2 + xa * xa
                for b in 0 .. a do s[a, b] <- s[a, b] + xa * x[i * d + b]
            fourth <- fourth + norm2 * norm2
        for a in 0 .. d - 1 do
            for b in 0 .. a do
                s[a, b] <- s[a, b] / float n
                s[b, a] <- s[a, b]
        let mu = Seq.sum (seq { for a in 0 .. d - 1 -> s[a, a] }) / float d
        let mutable frobenius2 = 0.0
        let mutable distance2 = 0.0 // ‖S − μI‖²
        for a in 0 .. d - 1 do
            for b in 0 .. d - 1 do
                frobenius2 <- frobenius2 + s[a, b] * s[a, b]
                let e = s[a, b] - (if a = b then mu else 0.0)
                distance2 <- distance2 + e * e
        // Σ_k ‖x_k x_kᵀ − S‖² = Σ_k ‖x_k‖⁴ − n‖S‖²
        let beta2 = min distance2 ((fourth - float n * frobenius2) / (float n * float n))
        let shrinkage = if distance2 > 0.0 then Math.Clamp(beta2 / distance2, 0.0, 1.0) else 1.0
        let covariance = Array2D.init d d (fun a b -> (1.0 - shrinkage) * s[a, b] + (if a = b then shrinkage * mu else 0.0))
        { Mean = mean; Covariance = covariance; Cholesky = cholesky covariance; Shrinkage = shrinkage }

    /// log N(x; mean, covariance) per row (float64).
    let logProb (g: GaussianFit) (rows: Tensor) =
        let d = g.Mean.Length
        Guard.that (nameof rows) (rows.dim = 2 && rows.shape[1] = d) $"expected [n; {d}] rows, got shape {Shape.show rows.shape}"
        let x = (rows.cast Dtype.Float64).toArray64()
        let logDet = Seq.sum (seq { for j in 0 .. d - 1 -> log g.Cholesky[j, j] })
        let z = Array.zeroCreate d
        Array.init rows.shape[0] (fun i ->
            // forward substitution: L z = x − mean
            let mutable q = 0.0
            for a in 0 .. d - 1 do
                let mutable t = x[i * d + a] - g.Mean[a]
                for b in 0 .. a - 1 do t <- t - g.Cholesky[a, b] * z[b]
                z[a] <- t / g.Cholesky[a, a]
                q <- q + z[a] * z[a]
            -0.5 * q - logDet - 0.5 * float d * log (2.0 * Math.PI))
