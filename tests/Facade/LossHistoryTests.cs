using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>A fit's report keeps the loss of every step and each validation check: a loss curve's data.</summary>
public class LossHistoryTests
{
    [Fact]
    public void A_fit_reports_one_loss_per_step_and_its_validation_checks()
    {
        var data = Data.Gaussian2(600, seed: 11);
        var report = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 12)
            .Fit(data, new FitOptions(Steps: 60, BatchSize: 64, ValidationFraction: 0.25, Seed: 13)).LastFit!;
        Assert.Equal(report.StepsRun, report.Losses.Count);
        Assert.Equal(report.FinalLoss, report.Losses[^1]);
        Assert.NotEmpty(report.ValidationLosses);
        Assert.All(report.ValidationLosses, v => Assert.InRange(v.Step, 1, report.StepsRun));
        Assert.All(report.ValidationLosses, v => Assert.True(double.IsFinite(v.Loss)));
    }

    [Fact]
    public void A_fit_to_a_density_reports_its_losses_without_validation()
    {
        var report = DensityModel.CreatePlanar(2, layers: 2, seed: 14)
            .FitToDensity(TargetDensity.TwoModeRing, new FitOptions(Steps: 30, BatchSize: 64, Seed: 15)).LastFit!;
        Assert.Equal(30, report.Losses.Count);
        Assert.Empty(report.ValidationLosses);
    }
}
