namespace Flows.CSharp;

/// <summary>What a <see cref="VariationalAutoencoder"/>'s decoder says about a data value given its latent code.</summary>
public enum VaeLikelihood
{
    /// <summary>Independent Bernoulli values (binary data, or grey levels in [0, 1] with <see cref="VaeFitOptions.Binarise"/>).</summary>
    Bernoulli,
    /// <summary>Independent Gaussians with a learnt mean and scale per value.</summary>
    Gaussian,
}

/// <summary>How <see cref="VariationalAutoencoder.Fit"/> trains: Adam on the one-sample negative ELBO of
/// mini-batches, with the KL term's weight rising from 0 to 1 over the first <paramref name="WarmUp"/> steps.</summary>
/// <param name="Steps">Optimiser steps (at least 1).</param>
/// <param name="BatchSize">Rows per step (capped at the number of rows).</param>
/// <param name="LearningRate">Adam's learning rate (above 0).</param>
/// <param name="WarmUp">Steps of KL warm-up (0: none).</param>
/// <param name="Binarise">Draw every batch afresh as 0/1 values with the data's values (in [0, 1]) as
/// probabilities: dynamic binarisation, as for binarised MNIST.</param>
/// <param name="ReportEvery">Steps between progress reports.</param>
/// <param name="Seed">Seed of the batches, the binarisation and the reparameterised samples.</param>
public sealed record VaeFitOptions(
    int Steps = 1000,
    int BatchSize = 100,
    double LearningRate = 1e-3,
    int WarmUp = 200,
    bool Binarise = false,
    int ReportEvery = 100,
    ulong Seed = 0);

/// <summary>A progress report of a VAE fit.</summary>
/// <param name="Step">Steps done so far.</param>
/// <param name="Loss">The last batch's negative β-weighted ELBO per row (nats).</param>
/// <param name="KlWeight">β, the KL term's weight during warm-up (1 after it).</param>
/// <param name="Elapsed">Time since the fit started.</param>
public sealed record VaeProgress(int Step, double Loss, double KlWeight, TimeSpan Elapsed);

/// <summary>How a VAE fit went.</summary>
/// <param name="StepsRun">Steps run.</param>
/// <param name="Losses">The negative β-weighted ELBO of every step's batch, per row (nats).</param>
/// <param name="SkippedSteps">Steps whose loss or gradient was not finite, rolled back.</param>
/// <param name="Diverged">Training stopped after repeated non-finite steps (the last finite parameters are kept).</param>
/// <param name="Message">What happened, in words.</param>
/// <param name="Elapsed">Training time.</param>
public sealed record VaeFitReport(int StepsRun, double[] Losses, int SkippedSteps, bool Diverged, string Message, TimeSpan Elapsed);

/// <summary>A VAE fit stopped by its cancellation token; <see cref="LastModel"/> has the parameters trained so far.</summary>
public sealed class VaeFitCancelledException : OperationCanceledException
{
    internal VaeFitCancelledException(VariationalAutoencoder lastModel, CancellationToken token)
        : base($"the VAE fit was cancelled after {lastModel.LastFit?.StepsRun ?? 0} steps", token) => LastModel = lastModel;

    /// <summary>The VAE with the parameters trained until the cancellation.</summary>
    public VariationalAutoencoder LastModel { get; }
}

/// <summary>A latent code's Gaussian before the posterior flow: per row, mean and log standard deviation.</summary>
/// <param name="Mean">μ(x), one row per data row.</param>
/// <param name="LogScale">log σ(x), one row per data row.</param>
public sealed record LatentGaussian(float[,] Mean, float[,] LogScale);
