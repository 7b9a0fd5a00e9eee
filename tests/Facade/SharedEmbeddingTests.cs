using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>A conditional model whose layers share one context embedding (nflows' embedding_net).</summary>
public sealed class SharedEmbeddingTests : IDisposable
{
    private readonly string directory = Data.TemporaryDirectory();

    public void Dispose()
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, true);
    }

    // two MAF layers built for the 4 features the embedding 1 → 16 → 4 gives
    private static Layer[] Layers(int features) => new[]
    {
        Layer.Maf(1, new[] { 16, 16 }, contextDimension: features, seed: 1),
        Layer.Maf(1, new[] { 16, 16 }, reversed: true, contextDimension: features, seed: 2),
    };

    [Fact]
    public void A_model_with_a_shared_embedding_learns_the_conditional_density_and_reloads()
    {
        // x | c ~ N(2c, 0.5²), c ~ N(0, 1): the exact conditional log-density is known
        var random = new Random(28);
        var train = Data.LinearGaussian(3000, random, out var trainContext);
        var test = Data.LinearGaussian(1000, random, out var testContext);
        var model = DensityModel.Compose(Layers(4), BaseDistribution.DiagonalNormal, contextDimension: 1, contextEmbedding: new[] { 16, 4 }, embeddingSeed: 3)
            .Fit(train, trainContext, new FitOptions(Steps: 300, BatchSize: 128, LearningRate: 1e-2, Seed: 20));
        // the embedding around its chain, and the default fit's Gaussian stage when that layout won
        Assert.Equal("context-embedding", model.LayerNames[0]);
        Assert.All(model.LayerNames.Skip(1), name => Assert.Equal("gaussian-stage", name));
        var logProb = model.LogProb(test, testContext);
        double exact = Data.LinearGaussianMeanLogDensity(test, testContext);
        // ignoring the context would cost about 1.4 nats (N(0, 4.25) against N(2c, 0.25))
        Assert.True(Math.Abs(logProb.Average(v => (double)v) - exact) < 0.1, $"mean {logProb.Average(v => (double)v)}, exact {exact}");
        model.Save(directory);
        Assert.Equal(logProb, DensityModel.Load(directory).LogProb(test, testContext));
    }

    [Fact]
    public void Inconsistent_embedding_widths_are_refused_naming_the_argument()
    {
        var mismatch = Assert.Throws<ArgumentException>(() =>
            DensityModel.Compose(Layers(3), contextDimension: 1, contextEmbedding: new[] { 16, 4 }));
        Assert.Equal("layers", mismatch.ParamName);
        Assert.Contains("built for 3 context columns; the embedding gives 4", mismatch.Message);
        Assert.Equal("contextEmbedding", Assert.Throws<ArgumentException>(() =>
            DensityModel.Compose(Layers(4), contextDimension: 1, contextEmbedding: new[] { 16, 0 })).ParamName);
        Assert.Equal("contextDimension", Assert.Throws<ArgumentException>(() =>
            DensityModel.Compose(Layers(4), contextEmbedding: new[] { 4 })).ParamName);
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() =>
            DensityModel.Compose(new[] { Layer.Maf(1) }, contextDimension: 1, contextEmbedding: new[] { 4 })).ParamName);
    }
}
