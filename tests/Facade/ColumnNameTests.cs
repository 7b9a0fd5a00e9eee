using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>Column names travel with a model: through fitting, saving and loading; files without them still load.</summary>
public class ColumnNameTests
{
    [Fact]
    public void Names_survive_a_fit_and_a_save_and_load()
    {
        var data = Data.Gaussian2(200, 3);
        var model = DensityModel.CreateMaf(2, layers: 1, hidden: 8).WithColumnNames(["height", "weight, kg"]);
        var fitted = model.Fit(data, new FitOptions(Steps: 3));
        Assert.Equal(["height", "weight, kg"], fitted.ColumnNames);
        var folder = Data.TemporaryDirectory();
        try
        {
            fitted.Save(folder);
            Assert.Equal(["height", "weight, kg"], DensityModel.Load(folder).ColumnNames);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void A_model_saved_without_names_writes_no_columns_field_and_loads_with_none()
    {
        var folder = Data.TemporaryDirectory();
        try
        {
            DensityModel.CreateMaf(2, layers: 1, hidden: 8).Save(folder);
            Assert.DoesNotContain("\"columns\"", File.ReadAllText(Path.Combine(folder, "model.json")));
            Assert.Empty(DensityModel.Load(folder).ColumnNames);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void A_file_whose_names_do_not_match_its_columns_is_reported_as_corrupt()
    {
        var folder = Data.TemporaryDirectory();
        try
        {
            DensityModel.CreateMaf(2, layers: 1, hidden: 8).WithColumnNames(["a", "b"]).Save(folder);
            var manifest = Path.Combine(folder, "model.json");
            var text = File.ReadAllText(manifest);
            var edited = System.Text.RegularExpressions.Regex.Replace(text, "\"columns\": \\[[^\\]]*\\]", "\"columns\": [\"a\"]");
            Assert.NotEqual(text, edited);
            File.WriteAllText(manifest, Data.Sealed(edited));
            var e = Assert.Throws<InvalidDataException>(() => DensityModel.Load(folder));
            Assert.Contains("\"columns\" names 1 columns; the model has 2", e.Message);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void The_wrong_number_of_names_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => DensityModel.CreateMaf(2, layers: 1, hidden: 8).WithColumnNames(["only one"]));
        Assert.Equal("names", e.ParamName);
        Assert.Contains("1 names for a model of 2 columns", e.Message);
    }
}
