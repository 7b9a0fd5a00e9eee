using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The optimiser, schedule and clipping options reach training, and FitAsync takes Fit's parameters in
/// Fit's order, with a null second argument meaning "no options".</summary>
public class FitOptionsTests
{
    private static readonly float[,] Data = Flows.Facade.Tests.Data.Gaussian2(256, seed: 3);
    private static readonly float[,] Probe = Flows.Facade.Tests.Data.Gaussian2(64, seed: 4);

    // plain training: no floor, no split, no refit, so only the options under test differ
    private static readonly FitOptions Plain = new(Steps: 30, BatchSize: 64, LearningRate: 1e-2, ValidationFraction: 0, GaussianFloor: false,
        Standardise: false, RefitOnAllRows: false, WeightDecay: 0, Seed: 5);

    private static float[] Fitted(FitOptions options) =>
        DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 1).Fit(Data, options).LogProb(Probe);

    private static double Largest(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Fact]
    public void AdamW_without_weight_decay_is_Adam_and_SGD_is_another_optimiser()
    {
        var adam = Fitted(Plain with { Optimiser = FitOptimiser.Adam });
        Assert.True(Largest(adam, Fitted(Plain with { Optimiser = FitOptimiser.AdamW })) < 1e-5);
        Assert.True(Largest(adam, Fitted(Plain with { Optimiser = FitOptimiser.Sgd })) > 1e-3);
    }

    [Fact]
    public void A_tiny_clip_norm_freezes_SGD_and_the_cosine_schedule_changes_the_fit()
    {
        var untrained = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 1).LogProb(Probe);
        var sgd = Plain with { Optimiser = FitOptimiser.Sgd };
        // every step moves the parameters by at most lr × 1e-9
        Assert.True(Largest(untrained, Fitted(sgd with { GradientClipNorm = 1e-9 })) < 1e-5);
        Assert.True(Largest(untrained, Fitted(sgd with { GradientClipNorm = double.PositiveInfinity })) > 1e-2);
        Assert.True(Largest(Fitted(Plain), Fitted(Plain with { Schedule = LearningRateSchedule.Cosine })) > 1e-4);
        Assert.Throws<ArgumentOutOfRangeException>(() => Fitted(Plain with { GradientClipNorm = 0 }));
    }

    [Fact]
    public async Task FitAsync_takes_Fits_parameters_in_Fits_order_and_null_means_no_options()
    {
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 1);
        var quick = new FitOptions(Steps: 10, BatchSize: 64);
        var expected = model.Fit(Data, quick).LogProb(Probe);
        Assert.Equal(expected, (await model.FitAsync(Data, quick)).LogProb(Probe));
        // a null second argument compiles and is the options
        Assert.Equal(model.Fit(Data).LogProb(Probe), model.Fit(Data, null).LogProb(Probe));
        Assert.Equal(model.Fit(Data).LogProb(Probe), (await model.FitAsync(Data, null)).LogProb(Probe));
    }
}
