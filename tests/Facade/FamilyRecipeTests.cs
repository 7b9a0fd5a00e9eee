using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The recipes for SOS, UMNN, Glow, flow matching and OT-Flow, used as a C# caller would.</summary>
public sealed class FamilyRecipeTests : IDisposable
{
    private readonly string directory = Data.TemporaryDirectory();

    public void Dispose()
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, true);
    }

    public static TheoryData<string> Recipes => new() { "sos", "umnn", "glow", "flow-matching", "ot-flow" };

    private static DensityModel Create(string recipe) => recipe switch
    {
        "sos" => DensityModel.CreateSos(2, layers: 2, hidden: 8, seed: 1),
        "umnn" => DensityModel.CreateUmnn(2, layers: 2, hidden: 8, embedding: 2, seed: 1),
        "glow" => DensityModel.CreateGlow(1, 4, 4, levels: 2, stepsPerLevel: 1, hidden: 4, seed: 1),
        "flow-matching" => DensityModel.CreateFlowMatching(2, hidden: 16, seed: 1),
        _ => DensityModel.CreateOtFlow(2, width: 8, rank: 2, seed: 1),
    };

    // centred, unit-variance columns with correlation 0.8 (16 columns for the 1×4×4 Glow: every pixel
    // shares one common factor), so that a fit without standardisation has only the dependence to learn
    private static float[,] Rows(string recipe, int n, int seed) =>
        recipe == "glow" ? CommonFactor(n, 16, seed) : Data.Gaussian2(n, seed, m0: 0, m1: 0, s0: 1, s1: 1, rho: 0.8);

    private static float[,] CommonFactor(int n, int columns, int seed)
    {
        var random = new Random(seed);
        var rows = new float[n, columns];
        for (int i = 0; i < n; i++)
        {
            double shared = Data.Normal(random);
            for (int j = 0; j < columns; j++) rows[i, j] = (float)(0.8 * shared + 0.6 * Data.Normal(random));
        }
        return rows;
    }

    private static double MeanNll(DensityModel model, float[,] rows) => -model.LogProb(rows).Average(v => (double)v);

    [Theory]
    [MemberData(nameof(Recipes))]
    public void A_brief_fit_lowers_the_training_nll_and_the_saved_model_scores_bit_identically(string recipe)
    {
        var train = Rows(recipe, recipe == "ot-flow" ? 64 : 128, seed: 2);
        var start = Create(recipe);
        int steps = recipe switch { "flow-matching" => 200, "ot-flow" => 4, _ => 30 };
        var model = start.Fit(train, new FitOptions(Steps: steps, BatchSize: 128, LearningRate: 1e-2, Standardise: false, Seed: 3));
        Assert.True(double.IsFinite(model.LastFit!.FinalLoss), $"final loss {model.LastFit.FinalLoss}");
        double before = MeanNll(start, train), after = MeanNll(model, train);
        Assert.True(after < before, $"{recipe}: training NLL {after} after the fit, {before} before");

        model.Save(directory);
        var loaded = DensityModel.Load(directory);
        var probe = Rows(recipe, 20, seed: 4);
        Assert.Equal(model.LogProb(probe), loaded.LogProb(probe));
        Assert.Equal(model.FitMethod, loaded.FitMethod);
        Assert.Equal(model.ImageShape, loaded.ImageShape);
    }

    [Fact]
    public void Flow_matching_beats_the_untrained_model_on_held_out_gaussian_rows()
    {
        var train = Data.Gaussian2(512, seed: 5, m0: 0, m1: 0, s0: 1, s1: 1, rho: 0.8);
        var test = Data.Gaussian2(200, seed: 6, m0: 0, m1: 0, s0: 1, s1: 1, rho: 0.8);
        var start = DensityModel.CreateFlowMatching(2, hidden: 32, seed: 7);
        Assert.Equal(FitMethod.FlowMatching, start.FitMethod);
        var model = start.Fit(train, new FitOptions(Steps: 300, BatchSize: 256, LearningRate: 1e-2, Standardise: false, Seed: 8));
        double untrained = MeanNll(start, test), fitted = MeanNll(model, test);
        double exact = -Enumerable.Range(0, 200).Average(i => Data.Gaussian2LogDensity(test[i, 0], test[i, 1], 0, 0, 1, 1, 0.8));
        // exact ≈ 2.33 nats; N(0, I), where an untrained field nearly leaves the base, scores ≈ 2.84
        Assert.True(fitted < untrained - 0.2, $"held-out NLL {fitted} fitted, {untrained} untrained (exact {exact})");
        Assert.True(Math.Abs(fitted - exact) < 0.2, $"held-out NLL {fitted}, exact {exact}");
    }

    [Fact]
    public void A_reloaded_flow_matching_model_keeps_training_by_flow_matching()
    {
        var train = Data.Gaussian2(128, seed: 9);
        // without the Gaussian floor, which could keep a Gaussian (fitted by maximum likelihood) instead
        var options = new FitOptions(Steps: 10, BatchSize: 64, LearningRate: 1e-2, GaussianFloor: false, Seed: 10);
        var model = DensityModel.CreateFlowMatching(2, hidden: 8, seed: 11).Fit(train, options);
        model.Save(directory);
        var loaded = DensityModel.Load(directory);
        Assert.Equal(FitMethod.FlowMatching, loaded.FitMethod);
        // the same objective from the same parameters and seed gives the same model
        var probe = Data.Gaussian2(10, seed: 12);
        Assert.Equal(model.Fit(train, options).LogProb(probe), loaded.Fit(train, options).LogProb(probe));
        Assert.Equal(FitMethod.MaximumLikelihood, DensityModel.CreateCnf(2, hidden: 8).FitMethod);
    }

    [Fact]
    public void A_model_file_without_a_fitting_loads_as_maximum_likelihood_and_an_unknown_one_is_named()
    {
        var model = DensityModel.CreateMaf(2, layers: 1, hidden: 4, seed: 15);
        model.Save(directory);
        var manifest = Path.Combine(directory, "model.json");
        var json = File.ReadAllText(manifest);
        int start = json.IndexOf(",\n  \"fitting\"", StringComparison.Ordinal);
        int end = json.IndexOf('}', start) + 1;
        Assert.True(start > 0, json);
        // as written before models recorded how they fit
        File.WriteAllText(manifest, Data.Sealed(json[..start] + json[end..]));
        var loaded = DensityModel.Load(directory);
        Assert.Equal(FitMethod.MaximumLikelihood, loaded.FitMethod);
        var probe = Data.Gaussian2(10, seed: 16);
        Assert.Equal(model.LogProb(probe), loaded.LogProb(probe));

        File.WriteAllText(manifest, Data.Sealed(json.Replace("\"maximum-likelihood\"", "\"annealing\"")));
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
        Assert.Contains("unknown fitting 'annealing'", error.Message);
    }

    [Fact]
    public void Glow_rejects_rows_that_are_not_flattened_images_of_its_shape()
    {
        var glow = DensityModel.CreateGlow(1, 4, 4, levels: 2, stepsPerLevel: 1, hidden: 4);
        Assert.Equal(16, glow.Dimension);
        Assert.Equal(new[] { 1, 4, 4 }, glow.ImageShape);
        var error = Assert.Throws<ArgumentException>(() => glow.LogProb(new float[3, 15]));
        Assert.Equal("data", error.ParamName);
        Assert.Contains("1×4×4", error.Message);
        Assert.Contains("16 columns; got 15", error.Message);
        Assert.Throws<ArgumentException>(() => glow.Fit(new float[3, 17]));
        Assert.Throws<ArgumentException>(() => DensityModel.CreateGlow(1, 6, 4, levels: 2));
        Assert.Null(DensityModel.CreateMaf(2).ImageShape);
    }

    [Fact]
    public void Bits_per_dimension_is_the_dequantised_nll_plus_log_levels_in_bits()
    {
        var random = new Random(13);
        var images = new float[40, 16];
        for (int i = 0; i < 40; i++)
            for (int j = 0; j < 16; j++) images[i, j] = random.Next(4);
        var x = DensityModel.Dequantise(images, levels: 4, seed: 14);
        for (int i = 0; i < 40; i++)
            for (int j = 0; j < 16; j++)
                Assert.InRange(x[i, j], images[i, j] / 4f - 0.5f, (images[i, j] + 1) / 4f - 0.5f);
        var glow = DensityModel.CreateGlow(1, 4, 4, levels: 2, stepsPerLevel: 1, hidden: 4);
        double nll = -glow.LogProb(x).Average(v => (double)v);
        double expected = (nll + 16 * Math.Log(4)) / (16 * Math.Log(2));
        Assert.Equal(expected, glow.BitsPerDim(images, levels: 4, seed: 14), 10);
        Assert.Throws<ArgumentException>(() => DensityModel.Dequantise(new float[,] { { 4 } }, levels: 4));
    }
}
