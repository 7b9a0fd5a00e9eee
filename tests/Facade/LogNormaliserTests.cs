using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary><see cref="DensityModel.EstimateLogNormaliser"/> against closed forms: unnormalised Gaussians
/// scale · N(μ, diag s²), whose log Z is log scale + (d/2) log 2π + Σ log s, and the ESS (Σw)²/Σw² recomputed
/// from the same draws.</summary>
public class LogNormaliserTests
{
    private const double Scale = 7.5;

    // log of scale · N(μ, diag s²) at each row, and its exact log Z
    private static (TargetDensity Target, double LogZ) Gaussian(double[] mean, double[] std)
    {
        var target = TargetDensity.FromFunction(mean.Length, z =>
        {
            var sum = ((z.Column(0) - mean[0]) / std[0]).Square();
            for (int j = 1; j < mean.Length; j++) sum = sum + ((z.Column(j) - mean[j]) / std[j]).Square();
            return -0.5 * sum + Math.Log(Scale);
        });
        return (target, Math.Log(Scale) + 0.5 * mean.Length * Math.Log(2 * Math.PI) + std.Sum(Math.Log));
    }

    // N(0, I) exactly: a standard normal base under a column reversal
    private static DensityModel StandardNormal(int dimension) =>
        DensityModel.Compose([Layer.Reverse(dimension)], BaseDistribution.StandardNormal);

    [Fact]
    public void A_model_equal_to_the_normalised_target_gives_the_closed_form_and_an_ess_of_every_draw()
    {
        var (target, exact) = Gaussian([0, 0, 0], [1, 1, 1]);
        var estimate = StandardNormal(3).EstimateLogNormaliser(target, 2000, seed: 4);
        Assert.Equal(exact, estimate.LogZ, 4);
        Assert.True(estimate.StandardError < 1e-5, $"standard error {estimate.StandardError}");
        Assert.True(estimate.EffectiveSampleFraction > 0.9999, $"ESS fraction {estimate.EffectiveSampleFraction}");
        Assert.Equal(2000, estimate.Samples);
    }

    [Fact]
    public void A_mismatched_model_is_unbiased_within_its_standard_error_and_its_ess_is_that_of_its_weights()
    {
        // s < 1: N(0, I) has the heavier tails, so the weights are bounded
        var (target, exact) = Gaussian([0.3, -0.2], [0.6, 0.8]);
        var model = StandardNormal(2);
        var estimate = model.EstimateLogNormaliser(target, 40_000, seed: 9);
        Assert.True(estimate.StandardError < 0.02, $"standard error {estimate.StandardError} too large to test anything");
        Assert.True(Math.Abs(estimate.LogZ - exact) <= 4 * estimate.StandardError, $"log Z {estimate.LogZ} ± {estimate.StandardError}, exact {exact}");

        // the same draws (same seed), weighed independently of the estimator
        var draws = model.SampleWithLogProb(40_000, seed: 9);
        var rows = new double[40_000, 2];
        for (int i = 0; i < 40_000; i++) { rows[i, 0] = draws.Rows[i, 0]; rows[i, 1] = draws.Rows[i, 1]; }
        var logP = target.Evaluate(rows);
        var w = logP.Select((l, i) => Math.Exp(l - draws.LogProb[i])).ToArray();
        double ess = Math.Pow(w.Sum(), 2) / w.Sum(v => v * v);
        Assert.Equal(1, estimate.EffectiveSampleSize / ess, 6);
        Assert.InRange(estimate.EffectiveSampleFraction, 0.5, 0.9);
    }

    [Fact]
    public void A_model_far_from_the_target_has_a_tiny_ess()
    {
        var (target, _) = Gaussian([3, 3], [0.3, 0.3]);
        var estimate = StandardNormal(2).EstimateLogNormaliser(target, 5000, seed: 2);
        Assert.True(estimate.EffectiveSampleFraction < 0.02, $"ESS fraction {estimate.EffectiveSampleFraction}");
    }

    [Fact]
    public void Bad_arguments_are_named()
    {
        var (target, _) = Gaussian([0, 0, 0], [1, 1, 1]);
        Assert.Equal("target", Assert.Throws<ArgumentException>(() => StandardNormal(2).EstimateLogNormaliser(target)).ParamName);
        Assert.Equal("samples", Assert.Throws<ArgumentOutOfRangeException>(() => StandardNormal(3).EstimateLogNormaliser(target, 1)).ParamName);
    }
}
