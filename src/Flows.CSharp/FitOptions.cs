namespace Flows.CSharp;

/// <summary>How <see cref="DensityModel.Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// trains. Immutable; change a copy with <c>with { ... }</c>.</summary>
/// <param name="Steps">Optimiser steps (at least 1); ignored when <paramref name="Epochs"/> is set.</param>
/// <param name="Epochs">Passes over the training rows; when set, the steps are ⌈epochs · rows / batch size⌉.</param>
/// <param name="BatchSize">Rows per step (at least 1; capped at the number of rows).</param>
/// <param name="LearningRate">Adam's learning rate (above 0).</param>
/// <param name="ValidationFraction">Share of the rows held out (chosen by the seed) and scored every
/// <paramref name="ValidateEvery"/> steps; the best-scoring parameters are returned. 0: none.</param>
/// <param name="Patience">Stop early once validation has not improved for this many checks (needs a validation fraction).</param>
/// <param name="ValidateEvery">Steps between validation checks.</param>
/// <param name="ReportEvery">Steps between progress reports.</param>
/// <param name="Standardise">Standardise columns (mean 0, scale 1) before fitting and keep that in the
/// model, so that callers always pass and get raw values. Used only by the first fit of a model.</param>
/// <param name="Seed">Seed of the split, the shuffling and reverse-KL samples; the same seed gives the same model.</param>
public sealed record FitOptions(
    int Steps = 1000,
    int? Epochs = null,
    int BatchSize = 256,
    double LearningRate = 1e-3,
    double ValidationFraction = 0,
    int? Patience = null,
    int ValidateEvery = 100,
    int ReportEvery = 10,
    bool Standardise = true,
    ulong Seed = 0);
