using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

public class FitTests
{
    [Fact]
    public void Fitting_a_correlated_gaussian_reaches_its_exact_mean_log_density()
    {
        var train = Data.Gaussian2(3000, seed: 1);
        var test = Data.Gaussian2(2000, seed: 2);
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 3)
            .Fit(train, new FitOptions(Steps: 300, BatchSize: 128, LearningRate: 1e-2, Seed: 4));
        var logProb = model.LogProb(test);
        double fitted = logProb.Average(v => (double)v);
        double exact = Enumerable.Range(0, 2000).Average(i => Data.Gaussian2LogDensity(test[i, 0], test[i, 1]));
        // exact mean ≈ −2.61 nats; an untrained standardised model misses the 0.8 correlation by ~0.5 nats
        Assert.True(Math.Abs(fitted - exact) < 0.1, $"mean log-density {fitted}, exact {exact}");
        Assert.True(model.IsStandardised);
        Assert.Equal(300, model.LastFit!.StepsRun);
    }

    [Fact]
    public void Epochs_set_the_number_of_steps_from_rows_and_batch_size()
    {
        var data = Data.Gaussian2(1000, seed: 5);
        var model = DensityModel.CreateMaf(2, layers: 1, hidden: 4).Fit(data, new FitOptions(Epochs: 3, BatchSize: 150, ValidationFraction: 0));
        Assert.Equal((int)Math.Ceiling(3 * 1000 / 150.0), model.LastFit!.StepsRun);
    }

    [Fact]
    public void Double_and_row_array_inputs_fit_the_same_model_as_float_arrays()
    {
        var data = Data.Gaussian2(300, seed: 6);
        var options = new FitOptions(Steps: 20, BatchSize: 64, Seed: 7);
        var start = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 8);
        var fromFloats = start.Fit(data, options).LogProb(data);
        var doubles = new double[300, 2];
        var rows = new List<float[]>();
        for (int i = 0; i < 300; i++)
        {
            doubles[i, 0] = data[i, 0];
            doubles[i, 1] = data[i, 1];
            rows.Add(new[] { data[i, 0], data[i, 1] });
        }
        Assert.Equal(fromFloats, start.Fit(doubles, options).LogProb(data));
        Assert.Equal(fromFloats, start.Fit(rows, options).LogProb(data));
    }

    [Fact]
    public void Validation_keeps_the_best_model_and_reports_its_loss()
    {
        var data = Data.Gaussian2(1000, seed: 9);
        var progress = new List<TrainingProgress>();
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 10).Fit(data,
            new FitOptions(Steps: 60, BatchSize: 128, LearningRate: 1e-2, ValidationFraction: 0.2, ValidateEvery: 10, ReportEvery: 10,
                GaussianFloor: false, RefitOnAllRows: false),
            new Collect(progress));
        var validated = progress.Where(p => p.ValidationLoss is not null).Select(p => p.ValidationLoss!.Value).ToArray();
        Assert.Equal(6, validated.Length);
        // the report scores the kept model row by row in float64; training validated in float32
        Assert.Equal(validated.Min(), model.LastFit!.BestValidationLoss!.Value, 3);
        Assert.Equal(new[] { 10, 20, 30, 40, 50, 60 }, progress.Select(p => p.Step));
        Assert.All(progress, p => Assert.Equal(60, p.TotalSteps));
    }

    [Fact]
    public void A_token_cancelled_from_the_progress_callback_stops_the_fit_with_the_model_so_far()
    {
        using var source = new CancellationTokenSource();
        var progress = new Collect(new List<TrainingProgress>(), p => { if (p.Step == 15) source.Cancel(); });
        var start = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8);
        var error = Assert.Throws<FitCancelledException>(() =>
            start.Fit(Data.Gaussian2(500, seed: 11), new FitOptions(Steps: 100_000, BatchSize: 64, ReportEvery: 1), progress, source.Token));
        Assert.Equal(source.Token, error.CancellationToken);
        Assert.Equal(15, error.LastModel.LastFit!.StepsRun);
        Assert.Contains("stopped by the caller after 15 steps", error.LastModel.LastFit.Message);
        // the partial model differs from the start and still scores
        Assert.NotEqual(start.LogProb(Data.Gaussian2(5, seed: 12)), error.LastModel.LogProb(Data.Gaussian2(5, seed: 12)));
    }

    [Fact]
    public async Task FitAsync_returns_the_same_model_and_ends_in_cancellation_when_cancelled()
    {
        var data = Data.Gaussian2(400, seed: 13);
        var options = new FitOptions(Steps: 15, BatchSize: 64, Seed: 14);
        var start = DensityModel.CreateMaf(2, layers: 2, hidden: 8);
        var fitted = await start.FitAsync(data, options: options);
        Assert.Equal(start.Fit(data, options).LogProb(data), fitted.LogProb(data));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => start.FitAsync(data, options: options, cancellationToken: cancelled.Token));
    }

    [Fact]
    public void Fitting_to_a_gaussian_target_density_matches_its_mean_and_spread()
    {
        var target = TargetDensity.GaussianMixture(new[] { new[] { 1.0, -2.0 } }, 0.5);
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 15)
            .FitToDensity(target, new FitOptions(Steps: 150, BatchSize: 64, LearningRate: 2e-2, Seed: 16));
        AssertMeansAndSpread(model.Sample(4000, seed: 17), new[] { 1.0, -2.0 }, 0.5);
    }

    [Fact]
    public void A_target_written_in_csharp_is_differentiated_and_fitted()
    {
        // N((1, −2), 0.5² I) up to its normaliser, from the Rows operations
        var target = TargetDensity.FromFunction(2, z => -0.5 * (((z.Column(0) - 1) / 0.5).Square() + ((z.Column(1) + 2) / 0.5).Square()));
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 15)
            .FitToDensity(target, new FitOptions(Steps: 150, BatchSize: 64, LearningRate: 2e-2, Seed: 16));
        AssertMeansAndSpread(model.Sample(4000, seed: 17), new[] { 1.0, -2.0 }, 0.5);
        // a model standardised by an earlier fit samples the same target in raw units
        var standardised = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 15)
            .Fit(Data.Gaussian2(500, seed: 18), new FitOptions(Steps: 1))
            .FitToDensity(target, new FitOptions(Steps: 150, BatchSize: 64, LearningRate: 2e-2, Seed: 16))
            .Sample(4000, seed: 17);
        var means = Enumerable.Range(0, 2).Select(j => Enumerable.Range(0, 4000).Average(i => (double)standardised[i, j])).ToArray();
        Assert.True(Math.Abs(means[0] - 1) < 0.05 && Math.Abs(means[1] + 2) < 0.05, $"means {means[0]}, {means[1]}");
        var wrongShape = TargetDensity.FromFunction(2, z => z);
        var error = Assert.Throws<InvalidOperationException>(() => model.FitToDensity(wrongShape, new FitOptions(Steps: 1)));
        Assert.Contains("one value per row", error.Message);
    }

    [Fact]
    public void A_conditional_model_learns_a_density_that_depends_on_the_context()
    {
        // x | c ~ N(2c, 0.5²), c ~ N(0, 1): the exact conditional log-density is known
        var random = new Random(18);
        var train = Data.LinearGaussian(3000, random, out var trainContext);
        var test = Data.LinearGaussian(1000, random, out var testContext);
        var model = DensityModel.CreateMaf(1, layers: 2, hidden: 16, contextDimension: 1, seed: 19)
            .Fit(train, trainContext, new FitOptions(Steps: 200, BatchSize: 128, LearningRate: 1e-2, Seed: 20));
        var logProb = model.LogProb(test, testContext);
        double exact = Data.LinearGaussianMeanLogDensity(test, testContext);
        // ignoring the context would cost about 1.4 nats (N(0, 4.25) against N(2c, 0.25))
        Assert.True(Math.Abs(logProb.Average(v => (double)v) - exact) < 0.1, $"mean {logProb.Average(v => (double)v)}, exact {exact}");
        Assert.Equal(1000, model.Sample(testContext, seed: 1).GetLength(0));
    }

    // each column's mean within 0.05 of its own, and its standard deviation within 0.05 of `std`
    private static void AssertMeansAndSpread(float[,] samples, double[] means, double std)
    {
        for (int j = 0; j < means.Length; j++)
        {
            var column = Enumerable.Range(0, samples.GetLength(0)).Select(i => (double)samples[i, j]).ToArray();
            double mean = column.Average(), spread = Math.Sqrt(column.Average(v => (v - mean) * (v - mean)));
            Assert.True(Math.Abs(mean - means[j]) < 0.05, $"column {j} mean {mean}");
            Assert.True(Math.Abs(spread - std) < 0.05, $"column {j} std {spread}");
        }
    }

    private sealed class Collect(List<TrainingProgress> into, Action<TrainingProgress>? also = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            into.Add(value);
            also?.Invoke(value);
        }
    }
}
