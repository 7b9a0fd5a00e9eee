using Flows.CSharp;

namespace Flows.Examples.AnomalyDetection;

/// <summary>How much data and training the detection gets.</summary>
/// <param name="Steps">Optimiser steps of the fit.</param>
/// <param name="Seed">Seed of the generated tables and of the fit.</param>
/// <param name="TrainRows">Normal rows the model is fitted on.</param>
/// <param name="ValidationRows">Normal rows the threshold is chosen on.</param>
/// <param name="TestNormalRows">Normal rows of the test set.</param>
/// <param name="TestAnomalies">Anomalies of the test set.</param>
/// <param name="FalseAlarmRate">Share of normal validation rows allowed below the threshold.</param>
internal sealed record DetectionSettings(int Steps, ulong Seed, int TrainRows = 4000, int ValidationRows = 2000,
    int TestNormalRows = 2000, int TestAnomalies = 100, double FalseAlarmRate = 0.01);

/// <summary>What the detector did on the test set.</summary>
/// <param name="Threshold">The log-density below which a row is flagged, nats.</param>
/// <param name="TruePositives">Anomalies flagged.</param>
/// <param name="FalsePositives">Normal rows flagged.</param>
/// <param name="FalseNegatives">Anomalies missed.</param>
internal sealed record DetectionResult(double Threshold, int TruePositives, int FalsePositives, int FalseNegatives)
{
    /// <summary>Flagged rows that are anomalies.</summary>
    public double Precision => TruePositives / (double)Math.Max(1, TruePositives + FalsePositives);

    /// <summary>Anomalies that were flagged.</summary>
    public double Recall => TruePositives / (double)(TruePositives + FalseNegatives);
}

/// <summary>The fitted model's detector and, on the same rows, the detector of the exact density.</summary>
/// <param name="Model">Scores from the fitted model.</param>
/// <param name="Exact">Scores from the density the normal rows were drawn from.</param>
/// <param name="FitReport">How the fit went.</param>
internal sealed record DetectionComparison(DetectionResult Model, DetectionResult Exact, FitReport FitReport);

/// <summary>Fit on normal rows, threshold from a validation quantile, precision and recall on labelled rows.</summary>
internal static class Detection
{
    public static DetectionComparison Run(DetectionSettings settings, TextWriter log)
    {
        var random = new Random((int)settings.Seed);
        var train = SensorTable.Normal(settings.TrainRows, random);
        var validation = SensorTable.Normal(settings.ValidationRows, random);
        var (test, isAnomaly) = SensorTable.WithAnomalies(settings.TestNormalRows, settings.TestAnomalies, random);

        // the validation rows are held out here, for the threshold: the fit trains on every training row for all
        // its steps, with little weight decay, since the tails it learns there are where anomalies fall
        var model = DensityModel.CreateForTable(settings.TrainRows, SensorTable.Columns, seed: settings.Seed)
            .Fit(train, new FitOptions(Steps: settings.Steps, Seed: settings.Seed, ValidationFraction: 0, WeightDecay: 1e-5));
        var report = model.LastFit!;
        log.WriteLine($"fitted on {settings.TrainRows} normal rows: {report.StepsRun} steps in {report.Elapsed.TotalSeconds:F1} s, final NLL {report.FinalLoss:F3} nats");

        var fitted = Evaluate(model.LogProb(validation), model.LogProb(test), isAnomaly, settings.FalseAlarmRate);
        Report(log, "the fitted model", fitted, settings);
        var exact = Evaluate(ExactScores(validation), ExactScores(test), isAnomaly, settings.FalseAlarmRate);
        Report(log, "the exact density", exact, settings);
        Figures.Write(log, "anomaly.precision", fitted.Precision, 3);
        Figures.Write(log, "anomaly.recall", fitted.Recall, 3);
        Figures.Write(log, "anomaly.exact_density_precision", exact.Precision, 3);
        Figures.Write(log, "anomaly.exact_density_recall", exact.Recall, 3);
        return new DetectionComparison(fitted, exact, report);
    }

    private static double[] ExactScores(double[,] rows) =>
        Enumerable.Range(0, rows.GetLength(0)).Select(i => SensorTable.LogDensity(rows, i)).ToArray();

    private static void Report(TextWriter log, string scorer, DetectionResult result, DetectionSettings settings)
    {
        log.WriteLine($"{scorer}: threshold {result.Threshold:F3} nats (the {settings.FalseAlarmRate:P0} quantile of {settings.ValidationRows} validation rows); " +
            $"of {settings.TestAnomalies} test anomalies {result.TruePositives} flagged, {result.FalseNegatives} missed; " +
            $"{result.FalsePositives} of {settings.TestNormalRows} normal test rows flagged");
        log.WriteLine($"{scorer}: precision {result.Precision:F3}, recall {result.Recall:F3}");
    }

    // the threshold is the log-density that the chosen share of normal validation rows falls below
    private static DetectionResult Evaluate(double[] validationScores, double[] testScores, bool[] isAnomaly, double falseAlarmRate)
    {
        double threshold = Quantile(validationScores, falseAlarmRate);
        int truePositives = 0, falsePositives = 0, falseNegatives = 0;
        for (int i = 0; i < testScores.Length; i++)
        {
            bool flagged = testScores[i] < threshold;
            if (flagged && isAnomaly[i]) truePositives++;
            else if (flagged) falsePositives++;
            else if (isAnomaly[i]) falseNegatives++;
        }
        return new DetectionResult(threshold, truePositives, falsePositives, falseNegatives);
    }

    /// <summary>The <paramref name="p"/> quantile of <paramref name="values"/>, interpolated between order statistics.</summary>
    public static double Quantile(IReadOnlyCollection<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        double position = p * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
