using System.Globalization;
using Flows.CSharp;

namespace Flows.Cli.Tests;

/// <summary>The train and sample details a user notices: the data's header comes back on samples, the reason a
/// fit stopped is printed, and --layers and --hidden change every family they are given to.</summary>
public sealed class CliDetailTests
{
    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string Table(TempFolder folder, string header, int rows, int seed)
    {
        var random = new Random(seed);
        var lines = new List<string> { header };
        for (int i = 0; i < rows; i++)
        {
            double x = random.NextDouble() * 2 - 1, y = 0.8 * x + 0.3 * (random.NextDouble() - 0.5);
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{x},{y}"));
        }
        return folder.File($"table{seed}.csv", string.Join('\n', lines));
    }

    [Fact]
    public void Sample_writes_the_training_header_and_a_model_trained_without_one_writes_none()
    {
        using var folder = new TempFolder();
        foreach (var (header, expected) in new[] { ("height,\"weight, kg\"", "height,\"weight, kg\""), ("", null) })
        {
            var data = header == "" ? Table(folder, "0.5,0.4", 100, 2) : Table(folder, header, 100, 1);
            var model = Path.Combine(folder.Root, $"model{expected is null}");
            var trained = Run("train", "--data", data, "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "3", "--out", model);
            Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
            var samples = Path.Combine(folder.Root, $"samples{expected is null}.csv");
            var sampled = Run("sample", "--model", model, "-n", "5", "--out", samples);
            Assert.True(sampled.Code == ExitCodes.Ok, sampled.Error);
            var lines = File.ReadAllLines(samples);
            if (expected is null)
            {
                Assert.Equal(5, lines.Length);
                Assert.Null(CsvTable.Read(samples).Header);
            }
            else
            {
                Assert.Equal(6, lines.Length);
                Assert.Equal(expected, lines[0]);
                Assert.Equal(["height", "weight, kg"], CsvTable.Read(samples).Header!);
            }
        }
    }

    [Fact]
    public void Train_prints_that_validation_stopped_it_early_and_which_step_it_kept()
    {
        using var folder = new TempFolder();
        var data = Table(folder, "x,y", 200, 3);
        var model = Path.Combine(folder.Root, "model");
        // no --steps: up to 1,000 epochs, stopped when the held-out rows stop improving
        var trained = Run("train", "--data", data, "--flow", "maf", "--layers", "1", "--hidden", "8", "--learning-rate", "1e-2", "--out", model);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
        var line = trained.Output.Split('\n').Single(l => l.StartsWith("stopped early: validation stopped improving, after ", StringComparison.Ordinal));
        var numbers = System.Text.RegularExpressions.Regex.Matches(line, @"\d+").Select(m => int.Parse(m.Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, numbers.Length); // steps run, step kept
        Assert.True(numbers[1] < numbers[0], line);

        var complete = Run("train", "--data", data, "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "4", "--out", model, "--force");
        Assert.True(complete.Code == ExitCodes.Ok, complete.Error);
        Assert.Contains("ran every step, after 4 steps", complete.Output);
    }

    // the width options of these families were once ignored: each must now change the model as the façade's
    // recipe with the same argument does (the fit's own stages add the same parameters to both)
    [Theory]
    [InlineData("bnaf", "--hidden", 2, 6)]
    [InlineData("flow-matching", "--layers", 1, 3)]
    [InlineData("ot-flow", "--layers", 2, 3)]
    public void Options_that_a_family_once_ignored_now_size_it(string flow, string option, int small, int large)
    {
        using var folder = new TempFolder();
        var data = Table(folder, "x,y", 60, 4);
        int Trained(int value)
        {
            var model = Path.Combine(folder.Root, $"model{value}");
            var args = new List<string> { "train", "--data", data, "--flow", flow, "--steps", "1", "--validation", "0", "--out", model, option, value.ToString(CultureInfo.InvariantCulture) };
            args.AddRange(option == "--hidden" ? ["--layers", "2"] : ["--hidden", "8"]);
            var result = Run([.. args]);
            Assert.True(result.Code == ExitCodes.Ok, result.Error);
            return DensityModel.Load(model).ParameterCount;
        }
        int Built(int value) => flow switch
        {
            "bnaf" => DensityModel.CreateBnaf(2, 2, value).ParameterCount,
            "flow-matching" => DensityModel.CreateFlowMatching(2, 8, hiddenLayers: value).ParameterCount,
            _ => DensityModel.CreateOtFlow(2, 8, resnetLayers: value).ParameterCount,
        };
        Assert.NotEqual(Built(small), Built(large));
        Assert.Equal(Built(large) - Built(small), Trained(large) - Trained(small));
    }

    [Fact]
    public void Too_few_layers_for_the_ot_flow_potential_are_refused_naming_the_option_and_the_family()
    {
        using var folder = new TempFolder();
        var data = Table(folder, "x,y", 60, 5);
        var model = Path.Combine(folder.Root, "model");
        var result = Run("train", "--data", data, "--flow", "ot-flow", "--layers", "1", "--steps", "1", "--out", model);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains("--layers 1 for --flow ot-flow", result.Error);
        Assert.False(Directory.Exists(model));
    }
}
