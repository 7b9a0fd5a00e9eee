using Flows.Examples.AnomalyDetection;
using Flows.Examples.Posterior;
using Flows.Examples.QuickStart;

namespace Flows.Cli.Tests;

/// <summary>The C# examples' cores with small settings: each figure they print, against what the data was drawn
/// from or an independent computation (the exact density, a Metropolis chain, Gaussian importance sampling).</summary>
public sealed class CSharpExampleTests
{
    [Fact]
    public void QuickStart_fits_a_ring_that_samples_save_load_condition_and_cancel_as_the_readme_says()
    {
        using var folder = new TempFolder();
        var result = Tour.Run(new TourSettings(Steps: 300, Seed: 1, ModelFolder: Path.Combine(folder.Root, "model")), TextWriter.Null);
        Assert.InRange(result.SampleRadius, 2.0, 2.2);                              // the ring lies between radii 2 and 2.2
        Assert.InRange(result.MeanLogDensity, result.ExactMeanLogDensity - 0.7, result.ExactMeanLogDensity + 0.1);
        Assert.Equal(0, result.LoadedMaxDifference);                               // bit-identical after a save and load
        Assert.True(result.RightHalfShare > 0.9, $"{result.RightHalfShare} of draws at c = +1 in the right half");
        Assert.InRange(result.MixtureShareNearPlus2, 0.22, 0.38);                   // the mixture's weight there is 0.3
        var logZ = result.MixtureLogZ;
        Assert.True(Math.Abs(logZ.LogZ - Math.Log(2 * Math.PI)) < 4 * logZ.StandardError + 0.02, $"log Z {logZ.LogZ} ± {logZ.StandardError}");
        Assert.InRange(result.CancelledAtStep, 150, 299);                           // cancelled half-way, not at the end
    }

    [Fact]
    public void AnomalyDetection_flags_most_anomalies_at_about_its_validation_false_alarm_rate()
    {
        var settings = new DetectionSettings(Steps: 1500, Seed: 3);
        var result = Detection.Run(settings, TextWriter.Null);
        // the exact density's detector shows what the generated anomalies allow
        Assert.True(result.Exact.Recall >= 0.95, $"exact recall {result.Exact.Recall}");
        Assert.True(result.Model.Recall >= 0.7, $"recall {result.Model.Recall}");
        Assert.True(result.Model.Precision >= 0.7, $"precision {result.Model.Precision}");
        // a 1 % validation quantile flags about 1 % of normal test rows (20 of 2,000; binomial sd 4.5)
        Assert.InRange(result.Model.FalsePositives, 5, 40);
    }

    [Fact]
    public void Posterior_matches_a_metropolis_chain_and_gaussian_importance_sampling()
    {
        var result = PosteriorStudy.Run(new PosteriorSettings(Steps: 1000, Seed: 5, ChainLength: 200_000, Draws: 10_000), TextWriter.Null);
        for (int j = 0; j < 3; j++)
        {
            // within a fifth of a posterior sd on the mean and 15 % on the sd (the chain's own error is ~1 %)
            Assert.True(Math.Abs(result.FlowMean[j] - result.Chain.Mean[j]) < 0.2 * result.Chain.Std[j], $"β{j}: mean {result.FlowMean[j]} against {result.Chain.Mean[j]}");
            Assert.InRange(result.FlowStd[j] / result.Chain.Std[j], 0.85, 1.15);
        }
        Assert.True(Math.Abs(result.LogZ.LogZ - result.ReferenceLogZ) < 0.05, $"log Z {result.LogZ.LogZ} against {result.ReferenceLogZ}");
        Assert.True(result.LogZ.EffectiveSampleFraction > 0.5, $"ESS fraction {result.LogZ.EffectiveSampleFraction}");
    }

    [Fact]
    public void The_posterior_target_written_with_rows_equals_the_plain_csharp_one()
    {
        var data = LogisticModel.Generate([-0.5, 1.0, -0.7], new Random(5));
        var points = new double[,] { { 0, 0, 0 }, { -0.3, 0.7, -0.5 }, { 1.2, -2.0, 0.4 } };
        var fromRows = data.Target().Evaluate(points);
        for (int i = 0; i < 3; i++)
            Assert.Equal(data.LogPosterior([points[i, 0], points[i, 1], points[i, 2]]), fromRows[i], 9);
    }
}
