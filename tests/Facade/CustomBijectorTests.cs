using Flows.CSharp;
using Flows.Examples.CustomLayers;
using Xunit;

namespace Flows.Facade.Tests;

public class CustomBijectorTests
{
    [Fact]
    public void The_example_reports_the_laws_each_bijector_breaks()
    {
        Assert.Equal(new[]
        {
            "custom.elementwise-affine passed",
            // +0.5 per column forward and −0.5 inverse cancel against each other and within a composition;
            // only the Jacobian's log|det| and the integral over the plane (e^1, not 1) can tell
            "custom.affine-log-det-off failed: forward-log-det, inverse-log-det, normalisation",
            // a forgotten shift breaks both round trips, the composed round trip and scoring one's own
            // samples; the wrong inverse is still a bijection with the right log-det, so the density integrates to 1
            "custom.affine-wrong-inverse failed: inverse-undoes-forward, forward-undoes-inverse, composition, sample-and-log-prob",
        }, ElementwiseAffine.CheckAll());
    }

    [Fact]
    public void LawAssert_passes_a_correct_layer_and_lists_the_failed_laws_of_a_wrong_one()
    {
        ElementwiseAffine.Correct.Register();
        ElementwiseAffine.LogDetOffByConstant.Register();
        LawAssert.Holds(BijectorLaws.Check(ElementwiseAffine.Correct.Create(3, spread: 0.5, seed: 2)));
        var error = Assert.Throws<LawFailedException>(() => LawAssert.Holds(BijectorLaws.Check(ElementwiseAffine.LogDetOffByConstant.Create(3, spread: 0.5, seed: 2))));
        Assert.Equal(new[] { "forward-log-det", "inverse-log-det" }, error.Report.FailedLaws);
        // three columns: 0.5 per column puts every row's log-det 1.5 off
        Assert.Equal(1.5, error.Report.Laws.Single(l => l.Law == "forward-log-det").WorstError, 9);
        Assert.Contains("forward-log-det: worst error 1.5", error.Message);
        Assert.False(error.Report.Laws.Single(l => l.Law == "normalisation").Applicable);
    }

    [Fact]
    public void A_custom_layer_starts_as_the_identity_and_trains_saves_and_loads_with_library_layers()
    {
        ElementwiseAffine.Correct.Register();
        var x = Data.Gaussian2(5, seed: 3);
        var alone = DensityModel.Compose(new[] { ElementwiseAffine.Correct.Create(2) }, BaseDistribution.StandardNormal);
        for (int i = 0; i < 5; i++)
            Assert.Equal(-0.5 * (x[i, 0] * x[i, 0] + x[i, 1] * x[i, 1]) - Math.Log(2 * Math.PI), alone.LogProb(x)[i], 5);

        var train = Data.Gaussian2(3000, seed: 1);
        var test = Data.Gaussian2(2000, seed: 2);
        var model = DensityModel.Compose(new[] { ElementwiseAffine.Correct.Create(2), Layer.AffineCoupling(2, new[] { 8 }, seed: 3), ElementwiseAffine.Correct.Create(2) })
            .Fit(train, new FitOptions(Steps: 300, BatchSize: 128, LearningRate: 1e-2, Standardise: false, GaussianFloor: false, Seed: 4));
        double fitted = model.LogProb(test).Average(v => (double)v);
        double exact = Enumerable.Range(0, 2000).Average(i => Data.Gaussian2LogDensity(test[i, 0], test[i, 1]));
        Assert.True(Math.Abs(fitted - exact) < 0.1, $"mean log-density {fitted}, exact {exact}");

        var folder = Path.Combine(Path.GetTempPath(), $"flows-custom-{Guid.NewGuid():N}");
        try
        {
            model.Save(folder);
            Assert.Equal(model.LogProb(test), DensityModel.Load(folder).LogProb(test));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_library_layer_passes_the_laws_from_csharp()
    {
        var report = BijectorLaws.Check(Layer.Radial(2, seed: 3));
        Assert.True(report.Passed, string.Join(Environment.NewLine, report.Laws.Select(l => $"{l.Law}: {l.Detail}")));
        Assert.Equal(BijectorLaws.Names, report.Laws.Select(l => l.Law));
    }

    [Fact]
    public void Bad_definitions_and_options_name_the_argument()
    {
        Assert.Equal("parameterNames", Assert.Throws<ArgumentException>(() =>
            new CustomBijector("custom.twice", new[] { "a", "a" }, (p, x) => new MapResult(x, x), (p, y) => new MapResult(y, y))).ParamName);
        var library = new CustomBijector("planar", new[] { "a" }, (p, x) => new MapResult(x, x), (p, y) => new MapResult(y, y));
        Assert.Equal("codec", Assert.Throws<ArgumentException>(library.Register).ParamName);
        var unknown = Assert.Throws<ArgumentException>(() => BijectorLaws.Check(Layer.Radial(2), new LawCheckOptions(Laws: new[] { "no-such-law" })));
        Assert.Contains("inverse-undoes-forward", unknown.Message);
    }
}
