/// The importance-weighted bound in the linear-Gaussian model: averaged over seeds it rises with k
/// (1, 10, 100) by more than its standard errors, stays below log p(x), and at k = 1 it is the ELBO.
module Flows.Properties.Vae.IwaeTests

open Xunit
open Flows.Tensors
open Flows.Vae
open Flows.Laws
open Flows.Properties.Support

[<Fact>]
let ``the IWAE bound increases with k and stays below log p(x)`` () =
    let x = LinearGaussian.data (Generator 21UL) 8
    // an over-dispersed posterior (σ twice the true one): a poor ELBO that importance weighting repairs
    let model = LinearGaussian.vae 22UL Posterior.Gaussian |> LinearGaussian.withPosteriorHeads 2.0
    let logPx = LinearGaussian.logMarginal x |> Array.average
    let seeds = 200
    // mean over rows of the bound, one value per seed
    let bounds (k: int) = Array.init seeds (fun s -> (Vae.iwae (Generator(uint64 (1000 * k + s))) k x model).mean().toScalar())
    let meanAndError (v: float[]) =
        let m = Array.average v
        m, sqrt ((v |> Array.sumBy (fun a -> (a - m) ** 2.0)) / float (v.Length - 1) / float v.Length)
    let (m1, e1), (m10, e10), (m100, e100) = meanAndError (bounds 1), meanAndError (bounds 10), meanAndError (bounds 100)
    let closedForm = LinearGaussian.gaussianElbo x (LinearGaussian.posteriorMean x) (LinearGaussian.posteriorCovariance.Diagonal() * 4.0) |> Array.average
    Close.scalar $"k = 1 is the ELBO (± 4 × {e1:F4})" { Abs = 4.0 * e1; Rel = 0.0 } closedForm m1
    Assert.True(m10 - m1 > 3.0 * sqrt (e1 * e1 + e10 * e10), $"k = 10: {m10:F4} ± {e10:F4} should exceed k = 1: {m1:F4} ± {e1:F4}")
    Assert.True(m100 - m10 > 3.0 * sqrt (e10 * e10 + e100 * e100), $"k = 100: {m100:F4} ± {e100:F4} should exceed k = 10: {m10:F4} ± {e10:F4}")
    Assert.True(m100 < logPx, $"k = 100: {m100:F4} ± {e100:F4} should stay below log p(x) = {logPx:F4}")
