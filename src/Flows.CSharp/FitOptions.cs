namespace Flows.CSharp;

/// <summary>How <see cref="DensityModel.Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// trains. Immutable; change a copy with <c>with { ... }</c>. A null means "chosen from the table's size"
/// (the README lists the rules): the defaults hold out rows, stop early on them, and keep a full-covariance
/// Gaussian of the data whenever the flow is not better than it on the held-out rows.</summary>
/// <param name="Steps">Optimiser steps (at least 1); null: up to <paramref name="Epochs"/> passes over the rows
/// (at most 10,000 steps), stopped early on validation.</param>
/// <param name="Epochs">The most passes over the training rows (null: 1,000, usually stopped early long before).</param>
/// <param name="BatchSize">Rows per step (capped at the number of rows); null: rows / 8 within [16, 256], 512 from 50,000 rows.</param>
/// <param name="LearningRate">Adam's learning rate (above 0).</param>
/// <param name="ValidationFraction">Share of the rows held out (chosen by the seed); null: at least 20 % and at
/// least 50 rows (at most half); 0: none (then no early stopping and no Gaussian choice).</param>
/// <param name="Patience">Stop once validation has not improved for this many epochs; null: about 300 steps'
/// worth, within [5, 30] epochs.</param>
/// <param name="ValidateEvery">Steps between validations; null: every epoch (every 250 steps for longer epochs).</param>
/// <param name="ReportEvery">Steps between progress reports.</param>
/// <param name="Standardise">Standardise data and context columns (in float64, mean 0, scale 1) before fitting and
/// keep that in the model, so that callers always pass and get raw values. Used only by the first fit of a model.</param>
/// <param name="GaussianFloor">Put a full-covariance Gaussian of the training rows (Ledoit–Wolf shrunk) under the flow,
/// so that identity-initialised layers start as that Gaussian, and return only the Gaussian when the flow is not better
/// on validation by more than two standard errors.</param>
/// <param name="WeightDecay">AdamW's decoupled weight decay; null: 20 / rows within [1e-4, 0.1].</param>
/// <param name="RefitOnAllRows">Fit the chosen model again on every row after the choice (for the chosen number of
/// steps); null: for tables of at most 5,000 rows.</param>
/// <param name="Seed">Seed of the split, the shuffling and reverse-KL samples; the same seed gives the same model.</param>
/// <param name="Optimiser">The optimiser (with <paramref name="WeightDecay"/> as its weight decay); null: AdamW, or Adam
/// when the weight decay is 0.</param>
/// <param name="Schedule">How the learning rate changes over the fit's planned steps.</param>
/// <param name="GradientClipNorm">The largest global gradient norm a step uses (larger gradients are scaled down);
/// null: 10 when fitting data, none for <see cref="DensityModel.FitToDensity"/>; <see cref="double.PositiveInfinity"/>: never clip.</param>
/// <param name="TraceEstimator">For models with CNF layers: how the fit estimates their divergence (null: exactly).
/// Hutchinson's estimators make each step cheaper for many columns; the fitted model scores densities with the exact trace.</param>
public sealed record FitOptions(
    int? Steps = null,
    int? Epochs = null,
    int? BatchSize = null,
    double LearningRate = 1e-3,
    double? ValidationFraction = null,
    int? Patience = null,
    int? ValidateEvery = null,
    int ReportEvery = 10,
    bool Standardise = true,
    bool GaussianFloor = true,
    double? WeightDecay = null,
    bool? RefitOnAllRows = null,
    ulong Seed = 0,
    FitOptimiser? Optimiser = null,
    LearningRateSchedule Schedule = LearningRateSchedule.Constant,
    double? GradientClipNorm = null,
    TraceEstimator? TraceEstimator = null);

/// <summary>The optimisers a fit can use (PyTorch's default hyperparameters).</summary>
public enum FitOptimiser
{
    /// <summary>Adam (Kingma &amp; Ba 2015), β = (0.9, 0.999); weight decay added to the gradient as torch.optim.Adam does.</summary>
    Adam,
    /// <summary>AdamW (Loshchilov &amp; Hutter 2019): Adam with decoupled weight decay.</summary>
    AdamW,
    /// <summary>Stochastic gradient descent with heavy-ball momentum 0.9.</summary>
    Sgd,
}

/// <summary>How the learning rate changes during a fit.</summary>
public enum LearningRateSchedule
{
    /// <summary>The same rate at every step.</summary>
    Constant,
    /// <summary>Cosine decay from the rate to 0 over the fit's planned steps.</summary>
    Cosine,
}
