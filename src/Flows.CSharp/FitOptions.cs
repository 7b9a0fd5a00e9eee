namespace Flows.CSharp;

/// <summary>How <see cref="DensityModel.Fit"/> trains: steps, batch size, learning rate and seed.</summary>
/// <param name="Steps">Optimiser steps (at least 1).</param>
/// <param name="BatchSize">Rows per step (at least 1; capped at the number of rows).</param>
/// <param name="LearningRate">Adam's learning rate (above 0).</param>
/// <param name="Seed">Seed of the shuffling; the same seed gives the same model.</param>
public sealed record FitOptions(int Steps = 1000, int BatchSize = 256, double LearningRate = 1e-3, ulong Seed = 0);
