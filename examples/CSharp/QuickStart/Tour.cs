using Flows.CSharp;

namespace Flows.Examples.QuickStart;

/// <summary>How long the tour trains and where it saves its model.</summary>
/// <param name="Steps">Optimiser steps of each fit.</param>
/// <param name="Seed">Seed of the data, the weights and the draws.</param>
/// <param name="ModelFolder">Folder the fitted model is saved to and loaded from.</param>
internal sealed record TourSettings(int Steps, ulong Seed, string ModelFolder);

/// <summary>What the tour measured.</summary>
/// <param name="MeanLogDensity">Mean log p(x) of the ring's rows under the fitted model, nats.</param>
/// <param name="ExactMeanLogDensity">Mean log p(x) of the same rows under the density they were drawn from.</param>
/// <param name="SampleRadius">Mean distance of 2,000 samples from the origin (the ring's is 2.1).</param>
/// <param name="LoadedMaxDifference">Largest |log p| difference between the saved-and-loaded model and the original.</param>
/// <param name="RightHalfShare">Share of 500 draws at context +1 with x &gt; 0 (the right half of the ring).</param>
/// <param name="MixtureShareNearPlus2">Share of the mixture approximation's draws nearer (2, 2) than (−2, −2) (0.3 exactly).</param>
/// <param name="MixtureLogZ">log Z of the unnormalised mixture estimated with the fitted model (exactly log 2π).</param>
/// <param name="MixtureEssFraction">Effective sample fraction of that estimate.</param>
/// <param name="CancelledAtStep">Steps the cancelled fit ran before it handed back its model.</param>
internal sealed record TourResult(double MeanLogDensity, double ExactMeanLogDensity, double SampleRadius, double LoadedMaxDifference, double RightHalfShare,
    double MixtureShareNearPlus2, LogNormaliserEstimate MixtureLogZ, double MixtureEssFraction, int CancelledAtStep);

/// <summary>The README's quickstart, step by step, with a line of figures after each.</summary>
internal static class Tour
{
    public static TourResult Run(TourSettings settings, TextWriter log)
    {
        var random = new Random((int)settings.Seed);
        var rows = new float[2000, 2]; // your table: one row per observation
        for (int i = 0; i < rows.GetLength(0); i++)
        {
            double angle = 2 * Math.PI * random.NextDouble(), radius = 2 + 0.2 * random.NextDouble();
            rows[i, 0] = (float)(radius * Math.Cos(angle));
            rows[i, 1] = (float)(radius * Math.Sin(angle));
        }

        // fit, score, sample: Fit returns a new model and leaves the untrained one as it was
        var model = DensityModel.CreateForTable(rows.GetLength(0), rows.GetLength(1), seed: settings.Seed)
            .Fit(rows, new FitOptions(Steps: settings.Steps, Seed: settings.Seed));
        log.WriteLine($"fit: {model.LastFit!.StopReason} after {model.LastFit.StepsRun} steps; kept the {model.LastFit.Chosen}");
        float[] logDensity = model.LogProb(rows);
        float[,] drawn = model.Sample(2000, seed: settings.Seed);
        double sampleRadius = Enumerable.Range(0, 2000).Average(i => Math.Sqrt(drawn[i, 0] * drawn[i, 0] + drawn[i, 1] * drawn[i, 1]));
        // the ring's exact density: angle uniform, radius r uniform on [2, 2.2], so p(x) = 1 / (2π r · 0.2)
        double exact = Enumerable.Range(0, rows.GetLength(0)).Average(i => -Math.Log(2 * Math.PI * 0.2 * Math.Sqrt(rows[i, 0] * rows[i, 0] + rows[i, 1] * rows[i, 1])));
        log.WriteLine($"mean log p(x) of the rows {logDensity.Average():F3} nats (exact density: {exact:F3}); mean radius of 2,000 samples {sampleRadius:F3} (data: 2.100)");

        model.Save(settings.ModelFolder);
        var loaded = DensityModel.Load(settings.ModelFolder);
        double difference = loaded.LogProb(rows).Zip(logDensity, (a, b) => Math.Abs(a - b)).Max();
        log.WriteLine($"saved to and loaded from {settings.ModelFolder}: largest log p difference {difference:G3}");

        // p(x | c): c says which half of the ring a row is in
        var context = new float[rows.GetLength(0), 1];
        for (int i = 0; i < rows.GetLength(0); i++) context[i, 0] = rows[i, 0] > 0 ? 1f : -1f;
        var conditional = DensityModel.CreateNeuralSpline(dimension: 2, contextDimension: 1, seed: settings.Seed)
            .Fit(rows, context, new FitOptions(Steps: settings.Steps, Seed: settings.Seed));
        float[,] rightHalf = conditional.Sample(500, new[] { 1f }, seed: settings.Seed);
        double rightShare = Enumerable.Range(0, 500).Count(i => rightHalf[i, 0] > 0) / 500.0;
        log.WriteLine($"conditional: {rightShare:P1} of 500 draws at c = +1 lie in the right half");

        // a density known up to a constant: 0.3 N((2, 2), I) + 0.7 N((−2, −2), I), times 2π
        var mixture = TargetDensity.FromFunction(2, z => Rows.LogSumExp(
            -0.5 * (z - 2.0).Square().SumColumns() + Math.Log(0.3),
            -0.5 * (z + 2.0).Square().SumColumns() + Math.Log(0.7)), "two-Gaussian mixture");
        var approximation = DensityModel.CreateNeuralSpline(2, seed: settings.Seed)
            .FitToDensity(mixture, new FitOptions(Steps: 2 * settings.Steps, Seed: settings.Seed));
        SampledRows draws = approximation.SampleWithLogProb(4000, seed: settings.Seed);
        double nearPlus2 = Enumerable.Range(0, 4000).Count(i => draws.Rows[i, 0] + draws.Rows[i, 1] > 0) / 4000.0;
        var logZ = approximation.EstimateLogNormaliser(mixture, 20_000, seed: settings.Seed);
        log.WriteLine($"mixture: {nearPlus2:P1} of draws near (2, 2) (target 30.0 %); log Z {logZ.LogZ:F3} ± {logZ.StandardError:F3} " +
            $"(exact {Math.Log(2 * Math.PI):F3}), ESS {logZ.EffectiveSampleSize:F0} of {logZ.Samples} ({logZ.EffectiveSampleFraction:P0})");

        // progress and cancellation: this fit is stopped from its own progress reports, half-way
        using var cancel = new CancellationTokenSource();
        var progress = new Reporter(p =>
        {
            if (p.Step % 100 == 0) log.WriteLine($"  step {p.Step}/{p.TotalSteps}  loss {p.Loss:F3}");
            if (p.Step >= settings.Steps / 2) cancel.Cancel();
        });
        int cancelledAt;
        try
        {
            model = model.FitAsync(rows, new FitOptions(Steps: settings.Steps, Seed: settings.Seed + 1), progress, cancel.Token).GetAwaiter().GetResult();
            cancelledAt = model.LastFit!.StepsRun;
        }
        catch (FitCancelledException stopped)
        {
            model = stopped.LastModel;
            cancelledAt = model.LastFit?.StepsRun ?? 0;
        }
        log.WriteLine($"cancelled fit handed back its model after {cancelledAt} of {settings.Steps} steps");
        Figures.Write(log, "quickstart.mean_log_density", logDensity.Average());
        Figures.Write(log, "quickstart.exact_mean_log_density", exact);
        Figures.Write(log, "quickstart.sample_radius", sampleRadius);
        Figures.Write(log, "quickstart.conditional_right_half_share", rightShare);
        Figures.Write(log, "quickstart.mixture_share_near_plus2", nearPlus2);
        Figures.Write(log, "quickstart.mixture_log_z", logZ.LogZ);
        Figures.Write(log, "quickstart.mixture_log_z_exact", Math.Log(2 * Math.PI));
        Figures.Write(log, "quickstart.mixture_ess_fraction", logZ.EffectiveSampleFraction);
        return new TourResult(logDensity.Average(), exact, sampleRadius, difference, rightShare, nearPlus2, logZ, logZ.EffectiveSampleFraction, cancelledAt);
    }

    /// <summary>Progress delivered on the training thread, so that cancelling from it stops the very next step.</summary>
    private sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
