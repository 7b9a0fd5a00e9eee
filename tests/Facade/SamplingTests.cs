using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>Sampling draws fresh randomness unless seeded, one context serves many rows, and rows drawn with
/// their log-density agree with <see cref="DensityModel.LogProb(float[,], float[,])"/>.</summary>
public class SamplingTests
{
    private static readonly DensityModel Model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 5)
        .Fit(Data.Gaussian2(300, seed: 1), new FitOptions(Steps: 30, BatchSize: 64, LearningRate: 1e-2));

    [Fact]
    public void Unseeded_calls_draw_fresh_rows_and_seeded_calls_repeat()
    {
        Assert.NotEqual(Model.Sample(20), Model.Sample(20));
        Assert.Equal(Model.Sample(20, seed: 3), Model.Sample(20, seed: 3));
        var first = Model.SampleWithLogProb(20);
        Assert.NotEqual(first.Rows, Model.SampleWithLogProb(20).Rows);
    }

    [Fact]
    public void Rows_drawn_with_their_log_density_match_the_log_density_of_those_rows()
    {
        var drawn = Model.SampleWithLogProb(200, seed: 7);
        Assert.Equal(Model.Sample(200, seed: 7), drawn.Rows);
        var scored = Model.LogProb(drawn.Rows);
        for (int i = 0; i < 200; i++)
            Assert.True(Math.Abs(scored[i] - drawn.LogProb[i]) < 1e-3 * (1 + Math.Abs(scored[i])), $"row {i}: {drawn.LogProb[i]} drawn, {scored[i]} scored");
    }

    [Fact]
    public void Many_rows_for_one_context_equal_the_rows_for_that_context_repeated()
    {
        var layers = new[] { Layer.AffineCoupling(2, new[] { 8 }, contextDimension: 1, seed: 1), Layer.Reverse(2), Layer.AffineCoupling(2, new[] { 8 }, contextDimension: 1, seed: 2) };
        var data = Data.Gaussian2(200, seed: 2);
        var context = new float[200, 1];
        for (int i = 0; i < 200; i++) context[i, 0] = data[i, 0] > 0 ? 1f : -1f;
        var model = DensityModel.Compose(layers, contextDimension: 1).Fit(data, context, new FitOptions(Steps: 20, BatchSize: 64));
        var repeated = new float[50, 1];
        for (int i = 0; i < 50; i++) repeated[i, 0] = 0.5f;
        Assert.Equal(model.Sample(repeated, seed: 4), model.Sample(50, new[] { 0.5f }, seed: 4));
        var drawn = model.SampleWithLogProb(repeated, seed: 4);
        var scored = model.LogProb(drawn.Rows, repeated);
        for (int i = 0; i < 50; i++) Assert.True(Math.Abs(scored[i] - drawn.LogProb[i]) < 1e-3 * (1 + Math.Abs(scored[i])));
        Assert.Contains("needs 1", Assert.Throws<ArgumentException>(() => model.Sample(5, new[] { 1f, 2f })).Message);
        Assert.Throws<ArgumentException>(() => Model.Sample(5, new[] { 1f }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Sample(0, new[] { 1f }));
    }
}
