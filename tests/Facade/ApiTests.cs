using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

public class ApiTests
{
    [Fact]
    public void A_disposed_model_refuses_to_be_used_and_disposing_twice_is_harmless()
    {
        float[,] rows = { { 0.1f, 0.2f }, { -0.3f, 0.4f } };
        var model = DensityModel.CreateRealNvp(2, layers: 2);
        using (var scoped = DensityModel.CreateRealNvp(2, layers: 2)) Assert.Equal(2, scoped.LogProb(rows).Length);
        model.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => model.LogProb(rows));
        Assert.Contains("disposed", e.Message);
        Assert.Throws<ObjectDisposedException>(() => model.Sample(3));
        model.Dispose();
    }

    [Fact]
    public void The_same_seed_gives_the_same_samples_and_another_seed_other_ones()
    {
        var model = DensityModel.CreateRealNvp(3, layers: 2, hidden: 8, seed: 5);
        var a = model.Sample(50, seed: 9);
        Assert.Equal(50, a.GetLength(0));
        Assert.Equal(3, a.GetLength(1));
        Assert.Equal(a, model.Sample(50, seed: 9));
        Assert.NotEqual(a, model.Sample(50, seed: 10));
    }

    [Fact]
    public void Log_densities_are_the_base_density_of_the_inverse_plus_its_log_determinant()
    {
        // a standard-normal base: log p(x) = Σ log φ(z_j) + log|det ∂z/∂x|, computed here by hand
        var layers = new[] { Layer.AffineCoupling(2, new[] { 8 }, seed: 1), Layer.Reverse(2), Layer.SplineCoupling(2, new[] { 8 }, seed: 2), Layer.Maf(2, new[] { 8 }, seed: 3) };
        var model = DensityModel.Compose(layers, BaseDistribution.StandardNormal)
            .Fit(Data.Gaussian2(200, seed: 4), new FitOptions(Steps: 10, BatchSize: 64, LearningRate: 1e-2));
        var x = Data.Gaussian2(30, seed: 5);
        var inverse = model.Inverse(x);
        var logProb = model.LogProb(x);
        for (int i = 0; i < 30; i++)
        {
            double z0 = inverse.Rows[i, 0], z1 = inverse.Rows[i, 1];
            double expected = -0.5 * (z0 * z0 + z1 * z1) - Math.Log(2 * Math.PI) + inverse.LogDeterminant[i];
            Assert.True(Math.Abs(expected - logProb[i]) < 1e-4, $"row {i}: {logProb[i]} against {expected}");
        }
        // forward undoes inverse, with the opposite log-determinant
        var back = model.Forward(inverse.Rows);
        for (int i = 0; i < 30; i++)
        {
            Assert.True(Math.Abs(back.Rows[i, 0] - x[i, 0]) < 1e-3 && Math.Abs(back.Rows[i, 1] - x[i, 1]) < 1e-3, $"row {i} came back as ({back.Rows[i, 0]}, {back.Rows[i, 1]})");
            Assert.True(Math.Abs(back.LogDeterminant[i] + inverse.LogDeterminant[i]) < 1e-4, $"row {i}: log-dets {back.LogDeterminant[i]} and {inverse.LogDeterminant[i]}");
        }
    }

    [Fact]
    public void Bad_data_is_refused_with_the_row_and_column_named()
    {
        var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 8);
        var withNaN = new float[4, 2];
        withNaN[2, 1] = float.NaN;
        var error = Assert.Throws<ArgumentException>(() => model.LogProb(withNaN));
        Assert.Contains("row 2, column 1", error.Message);
        Assert.Equal("data", error.ParamName);
        var infinite = new double[3, 2];
        infinite[1, 0] = double.PositiveInfinity;
        Assert.Contains("row 1, column 0", Assert.Throws<ArgumentException>(() => model.Fit(infinite)).Message);
        Assert.Contains("expected 2 columns, got 5", Assert.Throws<ArgumentException>(() => model.LogProb(new float[3, 5])).Message);
        Assert.Contains("no rows", Assert.Throws<ArgumentException>(() => model.Fit(new float[0, 2])).Message);
        var ragged = new[] { new[] { 1f, 2f }, new[] { 1f, 2f, 3f } };
        Assert.Contains("row 1 has 3 values; expected 2 columns", Assert.Throws<ArgumentException>(() => model.Fit(ragged)).Message);
        Assert.Contains("row 0 is null", Assert.Throws<ArgumentException>(() => model.Fit(new float[]?[] { null }!)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DensityModel.CreateRealNvp(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Fit(new float[3, 2], new FitOptions(LearningRate: -1)));
        Assert.Throws<ArgumentException>(() => model.Fit(new float[3, 2], new FitOptions(Patience: 3)));
    }

    [Fact]
    public void Contexts_are_checked_against_the_model()
    {
        var conditional = DensityModel.CreateRealNvp(2, layers: 1, hidden: 4, contextDimension: 2);
        var x = new float[3, 2];
        Assert.Contains("pass a context of 2 columns", Assert.Throws<ArgumentException>(() => conditional.LogProb(x)).Message);
        Assert.Contains("the context has 2 rows; the data has 3", Assert.Throws<ArgumentException>(() => conditional.LogProb(x, new float[2, 2])).Message);
        var badContext = new float[3, 2];
        badContext[2, 0] = float.NaN;
        var error = Assert.Throws<ArgumentException>(() => conditional.Fit(x, badContext));
        Assert.Equal("context", error.ParamName);
        Assert.Contains("row 2, column 0", error.Message);
        Assert.Throws<InvalidOperationException>(() => conditional.Sample(5));
        var plain = DensityModel.CreateRealNvp(2, layers: 1, hidden: 4);
        Assert.Contains("not conditional", Assert.Throws<ArgumentException>(() => plain.LogProb(x, new float[3, 1])).Message);
    }

    [Fact]
    public void Layers_rebuild_from_their_catalogue_name_and_settings()
    {
        foreach (var layer in new[] { Layer.Maf(3, new[] { 8 }, reversed: true), Layer.Iaf(3, contextDimension: 2), Layer.SplineCoupling(4, bins: 5), Layer.Residual(2), Layer.Radial(2).Inverted() })
        {
            var rebuilt = Layer.FromSettings(layer.Name, layer.Settings);
            Assert.Equal(layer.Name, rebuilt.Name);
            Assert.Equal(layer.Settings.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={Show(kv.Value)}"), rebuilt.Settings.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={Show(kv.Value)}"));
            Assert.Equal(layer.ParameterCount, rebuilt.ParameterCount);
        }
        var unknown = Assert.Throws<ArgumentException>(() => Layer.FromSettings("no-such", new Dictionary<string, object>()));
        Assert.Contains("affine-coupling", unknown.Message);
        var missing = Assert.Throws<ArgumentException>(() => Layer.FromSettings("planar", new Dictionary<string, object>()));
        Assert.Contains("setting 'dim' is missing", missing.Message);
        Assert.Contains("rq-spline-coupling", Layer.CatalogueNames);
    }

    [Fact]
    public void Every_catalogue_entry_builds_a_model_that_scores_finite_log_densities()
    {
        // unconditional entries only: a conditional one needs a context of its own width
        foreach (var name in Layer.CatalogueNames.Where(n => !Microsoft.FSharp.Core.FSharpOption<int>.get_IsSome(Flows.Catalogue.find(n).ContextDim)))
        {
            // a dimension the entry supports: 2 where it can, else its first (image entries need C·H·W)
            var dims = Flows.Fixtures.Library.find(name).Dims;
            int dimension = dims.Contains(2) ? 2 : dims.Head;
            var model = DensityModel.CreateFromCatalogue(name, dimension, layers: 1, seed: 3);
            // the data sit inside every entry's domain: (0, 1) suits the positive and interval ones
            var x = new float[5, dimension];
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < dimension; j++)
                    x[i, j] = 0.1f + 0.15f * i + 0.02f * j;
            Assert.All(model.LogProb(x), v => Assert.True(float.IsFinite(v), $"{name}: {v}"));
        }
    }

    private static string Show(object value) => value switch
    {
        int[] ints => string.Join(",", ints),
        double[] doubles => string.Join(",", doubles),
        _ => value.ToString() ?? "",
    };

    [Fact]
    public void A_model_says_where_it_runs_and_refuses_a_device_name_it_does_not_know()
    {
        var model = DensityModel.CreateRealNvp(2, layers: 1, hidden: 4, seed: 1);
        Assert.Equal("cpu", model.Device);
        Assert.Equal("cpu", model.To("CPU").Device);
        foreach (var bad in new[] { "gpu", "cuda:x", "" })
        {
            var e = Assert.Throws<ArgumentException>(() => model.To(bad));
            Assert.Equal("device", e.ParamName);
            Assert.Contains("cpu, cuda or cuda:N", e.Message);
        }
    }
}
