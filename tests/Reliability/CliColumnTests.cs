using System.Globalization;
using Flows.Cli;
using static Flows.Reliability.Tests.CliHarness;

namespace Flows.Reliability.Tests;

/// <summary>Columns a density cannot be fitted to are refused before training, naming the column.</summary>
public sealed class CliColumnTests
{
    [Theory]
    [InlineData("constant", "column 2 is constant")]
    [InlineData("duplicate", "columns 1 and 3 are identical")]
    public void A_constant_or_duplicate_column_is_bad_input_naming_it_and_no_model_is_written(string kind, string expected)
    {
        using var folder = new TempFolder();
        var random = new Random(3);
        var lines = new List<string> { "a,b,c" };
        for (int i = 0; i < 200; i++)
        {
            double a = Normal(random), c = kind == "duplicate" ? a : Normal(random);
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{a},{(kind == "constant" ? 4.5 : Normal(random))},{c}"));
        }
        var data = folder.File("data.csv", string.Join('\n', lines));
        var model = Path.Combine(folder.Root, "model");
        var result = Run("train", "--data", data, "--steps", "5", "--out", model);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains(expected, result.Error);
        Assert.False(Directory.Exists(model));
    }
}
