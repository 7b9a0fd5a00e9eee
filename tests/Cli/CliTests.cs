using System.Globalization;

namespace Flows.Cli.Tests;

/// <summary>The flows tool end to end, in process: the exit code, what it prints, what it writes.</summary>
public sealed class CliTests
{
    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Rows from a tilted Gaussian: y = 0.8·x + 0.3·noise, with a header.</summary>
    private static string GaussianCsv(TempFolder folder, int rows, int seed)
    {
        var random = new Random(seed);
        var lines = new List<string> { "x,y" };
        for (int i = 0; i < rows; i++)
        {
            double x = Normal(random), y = 0.8 * x + 0.3 * Normal(random);
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{x},{y}"));
        }
        return folder.File($"gauss{seed}.csv", string.Join('\n', lines));
    }

    private static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    [Fact]
    public void Train_score_and_sample_round_trip_on_a_csv_it_wrote()
    {
        using var folder = new TempFolder();
        var train = GaussianCsv(folder, 1500, 1);
        var test = GaussianCsv(folder, 500, 2);
        var model = Path.Combine(folder.Root, "model");
        var trained = Run("train", "--data", train, "--flow", "realnvp", "--layers", "4", "--hidden", "16", "--steps", "400", "--learning-rate", "5e-3", "--out", model);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
        Assert.True(File.Exists(Path.Combine(model, "model.json")));

        var scores = Path.Combine(folder.Root, "scores.csv");
        var scored = Run("logprob", "--model", model, "--data", test, "--out", scores);
        Assert.True(scored.Code == ExitCodes.Ok, scored.Error);
        var table = CsvTable.Read(scores);
        Assert.Equal(new[] { "log_prob" }, table.Header!);
        Assert.Equal(500, table.Rows);
        // The data law is N(0, [[1, .8], [.8, .73]]): entropy = log(2πe) + ½ log det Σ = 2.8379 + ½ log 0.09.
        var entropy = Math.Log(2 * Math.PI * Math.E) + 0.5 * Math.Log(0.73 - 0.64);
        var nll = -Enumerable.Range(0, table.Rows).Average(i => table.Values[i, 0]);
        Assert.InRange(nll, entropy - 0.15, entropy + 0.15);

        var samples = Path.Combine(folder.Root, "samples.csv");
        var sampled = Run("sample", "--model", model, "-n", "4000", "--seed", "5", "--out", samples);
        Assert.True(sampled.Code == ExitCodes.Ok, sampled.Error);
        var drawn = CsvTable.Read(samples).Values;
        var slope = Covariance(drawn, 0, 1) / Covariance(drawn, 0, 0);
        Assert.InRange(slope, 0.7, 0.9);
        var again = Path.Combine(folder.Root, "again.csv");
        Run("sample", "--model", model, "-n", "4000", "--seed", "5", "--out", again);
        Assert.Equal(File.ReadAllText(samples), File.ReadAllText(again));

        var png = Path.Combine(folder.Root, "density.png");
        var plotted = Run("plot", "--model", model, "--out", png, "--resolution", "32");
        Assert.True(plotted.Code == ExitCodes.Ok, plotted.Error);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png)[..4]);
    }

    // A PNG's width and height, from its header chunk (big-endian, after the signature and chunk head).
    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        int At(int offset) => (bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3];
        return (At(16), At(20));
    }

    [Fact]
    public void Train_with_plot_loss_writes_the_loss_curve_as_a_png()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, 400, 3);
        var png = Path.Combine(folder.Root, "loss.png");
        var trained = Run("train", "--data", data, "--flow", "realnvp", "--layers", "2", "--hidden", "8", "--steps", "40",
            "--out", Path.Combine(folder.Root, "model"), "--plot-loss", png);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
        Assert.Equal((900, 450), PngSize(png));
        Assert.Empty(Directory.GetFiles(folder.Root, "*.tmp"));
    }

    [Fact]
    public void Plot_columns_out_of_range_is_bad_input_naming_the_option()
    {
        using var folder = new TempFolder();
        var model = Path.Combine(folder.Root, "model");
        Assert.Equal(ExitCodes.Ok, Run("train", "--data", GaussianCsv(folder, 200, 4), "--flow", "realnvp", "--layers", "2", "--hidden", "8", "--steps", "5", "--out", model).Code);
        var plotted = Run("plot", "--model", model, "--out", Path.Combine(folder.Root, "p.png"), "--columns", "1,3");
        Assert.Equal(ExitCodes.BadInput, plotted.Code);
        Assert.Contains("--columns", plotted.Error);
        Assert.False(File.Exists(Path.Combine(folder.Root, "p.png")));
    }

    private static double Covariance(double[,] v, int a, int b)
    {
        int n = v.GetLength(0);
        double ma = 0, mb = 0, c = 0;
        for (int i = 0; i < n; i++) { ma += v[i, a]; mb += v[i, b]; }
        ma /= n; mb /= n;
        for (int i = 0; i < n; i++) c += (v[i, a] - ma) * (v[i, b] - mb);
        return c / n;
    }

    [Theory]
    [InlineData("x,y\n1,2\n3\n", "row 3, column 2")]
    [InlineData("x,y\n1,2\n3,abc\n", "row 3, column 2 ('y'): 'abc' is not a number")]
    [InlineData("", "the file is empty")]
    public void Malformed_csv_gives_a_clear_message_and_writes_nothing(string contents, string message)
    {
        using var folder = new TempFolder();
        var data = folder.File("bad.csv", contents);
        var model = Path.Combine(folder.Root, "model");
        var result = Run("train", "--data", data, "--steps", "5", "--out", model);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains(data, result.Error);
        Assert.Contains(message, result.Error);
        Assert.False(Directory.Exists(model));
    }

    [Theory]
    [InlineData("sos", "maximum-likelihood")]
    [InlineData("umnn", "maximum-likelihood")]
    [InlineData("flow-matching", "flow-matching")]
    [InlineData("ot-flow", "maximum-likelihood")]
    public void The_newer_families_train_and_score_and_their_model_files_say_how_they_fit(string flow, string fitting)
    {
        using var folder = new TempFolder();
        var train = GaussianCsv(folder, 100, 6);
        var model = Path.Combine(folder.Root, "model");
        var trained = Run("train", "--data", train, "--flow", flow, "--layers", "2", "--hidden", "8", "--steps", "3", "--validation", "0", "--out", model);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
        // (without validation there is no Gaussian to choose instead, so the family's own fitting is saved)
        Assert.Contains($"\"name\": \"{fitting}\"", File.ReadAllText(Path.Combine(model, "model.json")));
        var scores = Path.Combine(folder.Root, "scores.csv");
        var scored = Run("logprob", "--model", model, "--data", train, "--out", scores);
        Assert.True(scored.Code == ExitCodes.Ok, scored.Error);
        var table = CsvTable.Read(scores);
        Assert.Equal(100, table.Rows);
        Assert.All(Enumerable.Range(0, table.Rows), i => Assert.True(double.IsFinite(table.Values[i, 0])));
    }

    [Fact]
    public void Scoring_data_with_the_wrong_width_or_a_corrupt_model_is_bad_input_and_writes_nothing()
    {
        using var folder = new TempFolder();
        var train = GaussianCsv(folder, 200, 3);
        var model = Path.Combine(folder.Root, "model");
        Assert.Equal(ExitCodes.Ok, Run("train", "--data", train, "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "5", "--out", model).Code);
        var scores = Path.Combine(folder.Root, "scores.csv");

        var wide = folder.File("wide.csv", "1,2,3\n4,5,6\n");
        var result = Run("logprob", "--model", model, "--data", wide, "--out", scores);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains("has 3 columns, the model's data has 2", result.Error);

        var weights = Path.Combine(model, "weights.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length - 7)]);
        result = Run("logprob", "--model", model, "--data", train, "--out", scores);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains(model, result.Error);
        Assert.False(File.Exists(scores));
    }

    [Fact]
    public void Usage_errors_and_failures_have_distinct_exit_codes()
    {
        Assert.Equal(ExitCodes.BadInput, Run("train", "--flow", "nsf").Code); // --data and --out missing
        Assert.Equal(ExitCodes.BadInput, Run("demo", "no-such-demo").Code);
        Assert.Equal(ExitCodes.BadInput, Run("sample", "--model", "/no/such/model", "-n", "3", "--out", "x.csv").Code);
        Assert.NotEqual(ExitCodes.BadInput, ExitCodes.Failure);
    }

    [Fact]
    public void Train_names_a_device_it_does_not_know_as_bad_input_and_writes_no_model()
    {
        using var folder = new TempFolder();
        var train = GaussianCsv(folder, 50, 3);
        var model = Path.Combine(folder.Root, "model");
        var result = Run("train", "--data", train, "--steps", "2", "--device", "gpu0", "--out", model);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains("--device", result.Error);
        Assert.Contains("cpu, cuda or cuda:N", result.Error);
        Assert.False(Directory.Exists(model));
    }

    [Fact]
    public void A_column_far_from_zero_keeps_its_noise_because_values_stay_doubles_until_standardised()
    {
        // 1e8 + N(0, 1) beside an independent N(0, 1): in float32 the first column would round to
        // multiples of 8; read as doubles and standardised in float64 both are N(0, 1), so the held-out
        // mean log p is −log(2πe) = −2.8379 nats (both columns have unit scale, so no Jacobian term).
        using var folder = new TempFolder();
        string Table(string name, int rows, int seed)
        {
            var random = new Random(seed);
            var lines = new List<string> { "offset,plain" };
            for (int i = 0; i < rows; i++)
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{1e8 + Normal(random):R},{Normal(random):R}"));
            return folder.File(name, string.Join('\n', lines));
        }
        var train = Table("train.csv", 2000, 11);
        var test = Table("test.csv", 1000, 12);
        var model = Path.Combine(folder.Root, "model");
        var trained = Run("train", "--data", train, "--flow", "realnvp", "--steps", "50", "--layers", "2", "--hidden", "16", "--out", model);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
        var scores = Path.Combine(folder.Root, "scores.csv");
        var scored = Run("logprob", "--model", model, "--data", test, "--out", scores);
        Assert.True(scored.Code == ExitCodes.Ok, scored.Error);
        var values = CsvTable.Read(scores).Values;
        var mean = Enumerable.Range(0, values.GetLength(0)).Average(i => values[i, 0]);
        var expected = -Math.Log(2 * Math.PI * Math.E);
        Assert.InRange(mean, expected - 0.1, expected + 0.1);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("logprob")]
    [InlineData("sample")]
    public void Help_documents_every_option_of_the_command(string name)
    {
        var command = Commands.All(TextWriter.Null, TextWriter.Null, CancellationToken.None).Single(c => c.Name == name);
        var help = Run(name, "--help");
        Assert.Equal(ExitCodes.Ok, help.Code);
        var text = Collapse(help.Output);
        Assert.NotEmpty(command.Options);
        foreach (var option in command.Options)
        {
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{option.Name} has no description");
            Assert.Contains(option.Name, text);
            Assert.Contains(Collapse(option.Description!), text);
        }
    }

    private static string Collapse(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");
}
