using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The VAE façade on binary rows whose pixels are independent Bernoulli variables of known
/// probabilities: the best any model can do is minus the data's entropy, which a decoder that ignores z
/// attains, so a fitted VAE's bounds must come close to it from below.</summary>
public class VaeTests
{
    private static readonly double[] Probabilities = { 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.5, 0.05, 0.95, 0.4, 0.6, 0.25 };

    private static float[,] Binary(int n, int seed)
    {
        var random = new Random(seed);
        var rows = new float[n, Probabilities.Length];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < Probabilities.Length; j++)
                rows[i, j] = random.NextDouble() < Probabilities[j] ? 1f : 0f;
        return rows;
    }

    private static double NegativeEntropy => Probabilities.Sum(p => p * Math.Log(p) + (1 - p) * Math.Log(1 - p));

    private static readonly VaeFitOptions Quick = new(Steps: 600, BatchSize: 100, LearningRate: 3e-3, WarmUp: 100);

    [Theory]
    [InlineData("gaussian")]
    [InlineData("planar-4")]
    [InlineData("sylvester-o-2")]
    [InlineData("iaf-1")]
    public void A_fitted_VAE_comes_within_half_a_nat_of_the_data_entropy_from_below(string posterior)
    {
        var untrained = VariationalAutoencoder.Create(Probabilities.Length, latent: 2, posterior: posterior, hidden: new[] { 32 }, seed: 1);
        var test = Binary(2000, seed: 2);
        var fitted = untrained.Fit(Binary(3000, seed: 1), Quick);
        Assert.Equal(600, fitted.LastFit!.StepsRun);
        double elbo = fitted.Elbo(test, seed: 3).Average(), iwae = fitted.ImportanceWeightedBound(test, samples: 50, seed: 3).Average();
        // sampling noise of a 2000-row mean is about 0.05 nats
        Assert.InRange(elbo, NegativeEntropy - 0.5, NegativeEntropy + 0.15);
        Assert.InRange(iwae, elbo - 0.02, NegativeEntropy + 0.15);
        Assert.True(elbo > untrained.Elbo(test, seed: 3).Average() + 1.0, "training did not raise the ELBO");
    }

    [Fact]
    public void Encode_decode_and_sample_give_the_documented_shapes_and_ranges()
    {
        var vae = VariationalAutoencoder.Create(Probabilities.Length, latent: 3, posterior: "radial-2", hidden: new[] { 16 }, seed: 4);
        var x = Binary(7, seed: 5);
        var code = vae.Encode(x);
        Assert.Equal((7, 3), (code.Mean.GetLength(0), code.Mean.GetLength(1)));
        Assert.Equal((7, 3), (code.LogScale.GetLength(0), code.LogScale.GetLength(1)));
        Assert.Equal((7, 3), (vae.SampleLatent(x).GetLength(0), vae.SampleLatent(x).GetLength(1)));
        var decoded = vae.Decode(code.Mean);
        Assert.Equal((7, Probabilities.Length), (decoded.GetLength(0), decoded.GetLength(1)));
        Assert.All(decoded.Cast<float>(), p => Assert.InRange(p, 0f, 1f));
        Assert.All(vae.Sample(5, seed: 1).Cast<float>(), p => Assert.InRange(p, 0f, 1f));
        Assert.Equal(vae.Elbo(x, seed: 9), vae.Elbo(x, seed: 9));
        Assert.NotEqual(vae.Elbo(x), vae.Elbo(x));
        Assert.Equal(new[] { "amortised-radial", "amortised-radial" }, vae.PosteriorLayers);
    }

    [Fact]
    public void Cancellation_and_bad_input_are_reported_by_name()
    {
        var vae = VariationalAutoencoder.Create(Probabilities.Length, latent: 2, hidden: new[] { 8 });
        var cancelled = Assert.Throws<VaeFitCancelledException>(() => vae.Fit(Binary(100, 1), Quick, cancellationToken: new CancellationToken(true)));
        Assert.Equal(0, cancelled.LastModel.LastFit!.StepsRun);
        Assert.Contains("sylvester-o", Assert.Throws<ArgumentException>(() => VariationalAutoencoder.Create(4, posterior: "flowy")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => VariationalAutoencoder.Create(4, latent: 0));
        var grey = new float[10, Probabilities.Length];
        grey[3, 2] = 1.5f;
        Assert.Contains("[0, 1]", Assert.Throws<ArgumentException>(() => vae.Fit(grey, Quick with { Binarise = true })).Message);
        Assert.Equal("data", Assert.Throws<ArgumentException>(() => vae.Elbo(new float[3, 5])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => vae.ImportanceWeightedBound(Binary(3, 1), samples: 0));
    }
}
