using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The default fit's guarantees as a C# user meets them: float64 precision, standardised
/// contexts, refused columns, the Gaussian floor in the report, and losses in the data's units.</summary>
public sealed class TrustTests
{
    [Fact]
    public void A_column_far_from_zero_keeps_its_spread_when_passed_as_doubles()
    {
        // column 0: 1e8 + N(0, 1), column 1: N(0, 1), independent: mean log p = −(1 + log 2π) ≈ −2.84
        var random = new Random(40);
        double[,] Rows(int n)
        {
            var rows = new double[n, 2];
            for (int i = 0; i < n; i++)
            {
                rows[i, 0] = 1e8 + Data.Normal(random);
                rows[i, 1] = Data.Normal(random);
            }
            return rows;
        }
        var train = Rows(600);
        var test = Rows(2000);
        var model = DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 16, seed: 41).Fit(train);
        double mean = model.LogProb(test).Average();
        Assert.True(Math.Abs(mean - -(1 + Math.Log(2 * Math.PI))) < 0.08, $"mean log p {mean}");
        Assert.Empty(model.LastFit!.Warnings);
        // as float32, a column of 1e5 + N(0, 1) has lost digits already (at 1e8 it would be constant): the report says so
        var floats = new float[600, 2];
        for (int i = 0; i < 600; i++)
        {
            floats[i, 0] = (float)(train[i, 0] - 1e8 + 1e5);
            floats[i, 1] = (float)train[i, 1];
        }
        var warned = DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 16, seed: 41).Fit(floats, new FitOptions(Steps: 5));
        Assert.Contains(warned.LastFit!.Warnings, w => w.StartsWith("column 1:") && w.Contains("double"));
    }

    [Fact]
    public void Contexts_are_standardised_like_data_and_the_model_keeps_it()
    {
        // x | c ~ N(2c, 0.5²) with the context given in units 1000 times larger and shifted by 5e4
        var random = new Random(42);
        var train = Data.LinearGaussian(2000, random, out var trainContext);
        var test = Data.LinearGaussian(1000, random, out var testContext);
        double[,] Raw(float[,] c)
        {
            var raw = new double[c.GetLength(0), 1];
            for (int i = 0; i < raw.GetLength(0); i++) raw[i, 0] = 5e4 + 1000 * c[i, 0];
            return raw;
        }
        double[,] Doubles(float[,] x)
        {
            var d = new double[x.GetLength(0), 1];
            for (int i = 0; i < d.GetLength(0); i++) d[i, 0] = x[i, 0];
            return d;
        }
        var model = DensityModel.CreateMaf(1, layers: 2, hidden: 16, contextDimension: 1, seed: 43)
            .Fit(Doubles(train), Raw(trainContext), new FitOptions(LearningRate: 1e-2, Seed: 44));
        double mean = model.LogProb(Doubles(test), Raw(testContext)).Average();
        double exact = Data.LinearGaussianMeanLogDensity(test, testContext);
        // ignoring the context would cost about 1.4 nats
        Assert.True(Math.Abs(mean - exact) < 0.15, $"mean {mean}, exact {exact}");
        var directory = Data.TemporaryDirectory();
        try
        {
            model.Save(directory);
            Assert.Equal(model.LogProb(Doubles(test), Raw(testContext)), DensityModel.Load(directory).LogProb(Doubles(test), Raw(testContext)));
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, true);
        }
    }

    [Fact]
    public void Constant_and_duplicate_columns_are_refused_naming_the_column()
    {
        var rows = Data.Gaussian2(100, seed: 45);
        var three = new float[100, 3];
        for (int i = 0; i < 100; i++) (three[i, 0], three[i, 1], three[i, 2]) = (rows[i, 0], 7f, rows[i, 1]);
        var error = Assert.Throws<ArgumentException>(() => DensityModel.CreateRealNvp(3, layers: 2, hidden: 8).Fit(three));
        Assert.Equal("data", error.ParamName);
        Assert.Contains("column 2 is constant", error.Message);
        for (int i = 0; i < 100; i++) three[i, 1] = rows[i, 0];
        error = Assert.Throws<ArgumentException>(() => DensityModel.CreateRealNvp(3, layers: 2, hidden: 8).Fit(three));
        Assert.Contains("columns 1 and 2 are identical", error.Message);
    }

    [Fact]
    public void The_report_names_the_choice_and_scores_in_the_data_units()
    {
        // a Gaussian in raw units: the floor is the right model, and every loss is in nats of these units
        var train = Data.Gaussian2(400, seed: 46, m0: 500, s0: 300);
        var model = DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 16, seed: 47).Fit(train);
        var report = model.LastFit!;
        Assert.NotNull(report.GaussianValidationLoss);
        Assert.NotNull(report.FlowValidationLoss);
        Assert.True(report.ValidationRows >= 80 && report.TrainRows + report.ValidationRows == 400, $"{report.TrainRows} + {report.ValidationRows}");
        Assert.Contains(report.Chosen == FittedModel.Gaussian ? "kept the Gaussian" : "kept the flow", report.Message);
        var test = Data.Gaussian2(4000, seed: 48, m0: 500, s0: 300);
        double exactNll = -Enumerable.Range(0, 4000).Average(i => Data.Gaussian2LogDensity(test[i, 0], test[i, 1], m0: 500, s0: 300));
        double testNll = -model.LogProb(test).Average(v => (double)v);
        Assert.True(Math.Abs(testNll - exactNll) < 0.05, $"test NLL {testNll}, exact {exactNll}");
        // validation and training losses are NLLs of the raw rows (≈ 7.3 nats here, not the ≈ 1.3 of standardised ones)
        Assert.True(Math.Abs(report.BestValidationLoss!.Value - exactNll) < 0.3, $"validation {report.BestValidationLoss}, exact {exactNll}");
        Assert.True(Math.Abs(report.FinalLoss - exactNll) < 1.0, $"final loss {report.FinalLoss}, exact {exactNll}");
        Assert.True(report.StopReason is FitStop.EarlyStopped or FitStop.Completed, $"{report.StopReason}");
    }
}
