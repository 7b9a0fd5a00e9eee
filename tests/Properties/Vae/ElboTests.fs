/// The ELBO and IWAE of the VAE against the linear-Gaussian model's closed forms (MathNet): exact
/// at the true posterior, and reached by fitting the posterior when the family contains it.
module Flows.Properties.Vae.ElboTests

open Xunit
open Flows.Tensors
open Flows.Vae
open Flows.Laws
open Flows.Properties.Support

let private repeatRows (times: int) (x: Tensor) =
    x.unsqueeze(0).expand([| times; x.shape[0]; x.shape[1] |]).reshape [| times * x.shape[0]; x.shape[1] |]

[<Fact>]
let ``at the true posterior the ELBO and the chunked IWAE both equal log p(x) for every row`` () =
    let x = LinearGaussian.data (Generator 1UL) 5
    let model = LinearGaussian.vae 2UL Posterior.Gaussian |> LinearGaussian.withPosteriorHeads 1.0
    let expected = LinearGaussian.logMarginal x
    // p(x, z)/q(z | x) = p(x) for every z: no Monte Carlo error, so float64 agreement
    Close.arrays "ELBO" { Abs = 1e-9; Rel = 1e-9 } expected ((Vae.elbo (Generator 3UL) x model).toArray64())
    // k = 10000 is scored in two chunks of samples (8192 + 1808): the running log-sum-exp must combine them
    Close.arrays "IWAE, k = 10000" { Abs = 1e-9; Rel = 1e-9 } expected ((Vae.iwae (Generator 4UL) 10000 x model).toArray64())

[<Fact>]
let ``the one-sample ELBO of a Gaussian posterior averages to its closed form`` () =
    let x = LinearGaussian.data (Generator 5UL) 3
    let scale = 1.7
    let model = LinearGaussian.vae 6UL Posterior.Gaussian |> LinearGaussian.withPosteriorHeads scale
    let variance = LinearGaussian.posteriorCovariance.Diagonal() * (scale * scale)
    let expected = LinearGaussian.gaussianElbo x (LinearGaussian.posteriorMean x) variance
    let draws = 4000
    let estimates = (Vae.elbo (Generator 7UL) (repeatRows draws x) model).reshape([| draws; 3 |])
    let mean = estimates.mean(0).toArray64()
    let standardError = (estimates.std(0) / sqrt (float draws)).toArray64()
    for i in 0 .. 2 do
        Close.scalar $"row {i}: mean ELBO within 4 standard errors ({standardError[i]:F4})" { Abs = 4.0 * standardError[i]; Rel = 0.0 } expected[i] mean[i]
        // and it is a strict bound: the closed-form gap is KL(q ‖ p(z | x)) > 0 for q ≠ the posterior
        Assert.True(expected[i] < (LinearGaussian.logMarginal x)[i] - 0.05)

[<Theory>]
[<InlineData("gaussian")>]
[<InlineData("sylvester-t-2")>]
[<InlineData("iaf-1")>]
let ``fitting the posterior makes the ELBO reach log p(x) when the family contains the true posterior`` (name: string) =
    let x = LinearGaussian.data (Generator 8UL) 16
    let model = LinearGaussian.vae 9UL (Posterior.parse LinearGaussian.latent name)
    let logPx = LinearGaussian.logMarginal x |> Array.average
    let averageElbo (m: Flows.Vae.Vae) = (Vae.elbo (Generator 10UL) (repeatRows 200 x) m).mean().toScalar()
    let before = averageElbo model
    let fitted, report =
        Vae.fit { VaeFitOptions.defaults with Steps = 1500; BatchSize = 16; LearningRate = 1e-2; WarmUp = 0; Seed = 11UL } x model
    let refined, _ = Vae.fit { VaeFitOptions.defaults with Steps = 1000; BatchSize = 16; LearningRate = 1e-3; WarmUp = 0; Seed = 12UL } x fitted
    let after = averageElbo refined
    Assert.False(report.Diverged, report.Message)
    // the start is far from the posterior; the fit closes the gap KL(q ‖ p(z | x)) to 0.03 nats per row
    Assert.True(logPx - before > 1.0, $"{name}: the initial gap {logPx - before} should be large")
    Close.scalar $"{name}: fitted ELBO against log p(x) (started {before:F3})" { Abs = 0.03; Rel = 0.0 } logPx after
