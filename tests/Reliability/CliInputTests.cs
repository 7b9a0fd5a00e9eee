using System.Text;
using Flows.Cli;
using static Flows.Reliability.Tests.CliHarness;

namespace Flows.Reliability.Tests;

/// <summary>A model trained once for the input tests that score with it (plain and conditional).</summary>
public sealed class TrainedModels : IDisposable
{
    public TrainedModels()
    {
        var data = GaussianCsv(Folder, "data.csv", 200, 1);
        var context = GaussianCsv(Folder, "context.csv", 200, 2, columns: 1);
        Plain = Train(Folder, "plain", data);
        Conditional = Train(Folder, "conditional", data, context);
    }

    public TempFolder Folder { get; } = new();
    public string Plain { get; }
    public string Conditional { get; }

    public void Dispose() => Folder.Dispose();
}

/// <summary>Bad and hostile CSV input to every command that reads one: exit code 2, a message naming the
/// file, 1-based row and column, and no model or output written.</summary>
public sealed class CliInputTests(TrainedModels models) : IClassFixture<TrainedModels>
{
    [Theory]
    [InlineData("x,y\n1,2\nNaN,3\n", "row 3, column 1 ('x')", "(NaN)")]
    [InlineData("x,y\n1,2\n3,Infinity\n", "row 3, column 2 ('y')", "infinite")]
    [InlineData("x,y\n1,2\n3,-1e400\n", "row 3, column 2 ('y')", "infinite")]
    [InlineData("x,y\n1,2\n3.5e38,3\n", "row 3, column 1 ('x')", "beyond the float32 range")]
    [InlineData("x,y\n1,2\n,3\n", "row 3, column 1 ('x')", "the cell is empty")]
    [InlineData("x,y\n1,2\n3,   \n", "row 3, column 2 ('y')", "the cell is empty")]
    [InlineData("x,y\n1,2\n3\n", "row 3, column 2", "the row has 1 cells, the header has 2")]
    [InlineData("x,y\n1,2\n3,4,5\n", "row 3, column 3", "the row has 3 cells, the header has 2")]
    [InlineData("x,y\n1,2\n\n3,4\n", "row 3 is blank", "may only end the file")]
    [InlineData("x,2\n1,2\n", "row 1, column 2", "mixes numbers and text")]
    [InlineData("x,y\n1,2\n3,4\"\n", "row 3, column 2 ('y')", "'4\"' is not a number")]
    public void A_bad_cell_is_refused_by_train_and_logprob_naming_its_place_and_nothing_is_written(string contents, string where, string what)
    {
        using var folder = new TempFolder();
        var data = folder.File("bad.csv", contents);
        var model = Path.Combine(folder.Root, "model");
        var trained = Run("train", "--data", data, "--steps", "5", "--layers", "2", "--hidden", "16", "--out", model);
        Assert.Equal(ExitCodes.BadInput, trained.Code);
        Assert.Contains($"{data}: {where}", trained.Error);
        Assert.Contains(what, trained.Error);
        Assert.False(Directory.Exists(model));

        var scores = Path.Combine(folder.Root, "scores.csv");
        var scored = Run("logprob", "--model", models.Plain, "--data", data, "--out", scores);
        Assert.Equal(ExitCodes.BadInput, scored.Code);
        Assert.Contains($"{data}: {where}", scored.Error);
        Assert.Single(Directory.GetFiles(folder.Root)); // bad.csv alone: no output, no temporary
    }

    [Fact]
    public void A_bad_cell_late_in_a_long_file_leaves_no_partial_scores()
    {
        // the first chunks are scored and written to the temporary file before the bad row is reached
        using var folder = new TempFolder();
        var rows = Enumerable.Range(0, 150_000).Select(i => $"{i % 7 * 0.1},{i % 5 * 0.2}").ToList();
        rows[140_000] = "0.5,oops";
        var data = folder.File("long.csv", "x,y\n" + string.Join('\n', rows) + "\n");
        var scores = Path.Combine(folder.Root, "scores.csv");
        var scored = Run("logprob", "--model", models.Plain, "--data", data, "--out", scores);
        Assert.Equal(ExitCodes.BadInput, scored.Code);
        Assert.Contains($"{data}: row 140002, column 2 ('y'): 'oops' is not a number", scored.Error);
        Assert.Single(Directory.GetFiles(folder.Root));
    }

    [Theory]
    [InlineData("train-data")]
    [InlineData("train-context")]
    [InlineData("logprob-data")]
    [InlineData("logprob-context")]
    [InlineData("sample-context")]
    public void Every_csv_a_command_reads_takes_header_and_no_header(string which)
    {
        using var folder = new TempFolder();
        // first rows that are numbers: a header only with --header; that row is then not data
        var data = folder.File("data.csv", "0.5,1.5\n" + string.Join('\n', Enumerable.Range(0, 40).Select(i => $"{i % 9 * 0.3},{i % 4 * 0.7 - 1}")) + "\n");
        var context = folder.File("context.csv", "7\n" + string.Join('\n', Enumerable.Range(0, 40).Select(i => $"{i % 3}")) + "\n");
        var named = folder.File("named.csv", "a,b\n0.1,0.2\n");
        var mixed = folder.File("mixed.csv", "x,2\n0.1,0.2\n");
        var model = Path.Combine(folder.Root, "model");
        var output = Path.Combine(folder.Root, "out.csv");
        string[] Command(string dataFile, string contextFile, params string[] flags) => which switch
        {
            "train-data" => ["train", "--data", dataFile, "--steps", "2", "--layers", "2", "--hidden", "16", "--out", model, "--force", .. flags],
            "train-context" => ["train", "--data", data, "--context", contextFile, "--steps", "2", "--layers", "2", "--hidden", "16", "--out", model, "--force", .. flags],
            "logprob-data" => ["logprob", "--model", models.Plain, "--data", dataFile, "--out", output, .. flags],
            "logprob-context" => ["logprob", "--model", models.Conditional, "--data", data, "--context", contextFile, "--out", output, .. flags],
            _ => ["sample", "--model", models.Conditional, "-n", "40", "--context", contextFile, "--out", output, .. flags],
        };
        bool readsContext = which.EndsWith("context", StringComparison.Ordinal);
        // with --header the first row of every file is names, leaving 40 rows
        var withHeader = Run(Command(data, context, "--header"));
        Assert.True(withHeader.Code == ExitCodes.Ok, withHeader.Error);
        if (which == "logprob-data" || which == "logprob-context")
            Assert.Equal(41, File.ReadAllLines(output).Length); // log_prob and 40 scores
        // --no-header with names in the first row: the name is not a number, said at row 1
        var names = readsContext ? folder.File("context-names.csv", "k\n" + string.Join('\n', Enumerable.Range(0, 41).Select(i => $"{i % 3}")) + "\n") : named;
        var refused = Run(Command(named, names, "--no-header"));
        Assert.Equal(ExitCodes.BadInput, refused.Code);
        Assert.Contains(readsContext ? $"{names}: row 1, column 1: 'k' is not a number" : $"{named}: row 1, column 1: 'a' is not a number", refused.Error);
        // neither flag and a first row mixing names and numbers: refused, naming the cell
        if (!readsContext)
        {
            var guessed = Run(Command(mixed, context));
            Assert.Equal(ExitCodes.BadInput, guessed.Code);
            Assert.Contains($"{mixed}: row 1, column 2: row 1 mixes numbers and text", guessed.Error);
        }
    }

    [Fact]
    public void Both_header_flags_at_once_are_refused()
    {
        using var folder = new TempFolder();
        var result = Run("logprob", "--model", models.Plain, "--data", GaussianCsv(folder, "d.csv", 5, 3), "--out", Path.Combine(folder.Root, "o.csv"), "--header", "--no-header");
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains("--header and --no-header", result.Error);
    }

    [Fact]
    public void A_byte_order_mark_and_crlf_line_ends_score_as_the_plain_file_does()
    {
        using var folder = new TempFolder();
        var plain = GaussianCsv(folder, "plain.csv", 50, 4);
        var windows = folder.File("windows.csv");
        File.WriteAllBytes(windows, [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(File.ReadAllText(plain).Replace("\n", "\r\n"))]);
        var a = Path.Combine(folder.Root, "a.csv");
        var b = Path.Combine(folder.Root, "b.csv");
        Assert.Equal(ExitCodes.Ok, Run("logprob", "--model", models.Plain, "--data", plain, "--out", a).Code);
        var scored = Run("logprob", "--model", models.Plain, "--data", windows, "--out", b);
        Assert.True(scored.Code == ExitCodes.Ok, scored.Error);
        Assert.Equal(File.ReadAllText(a), File.ReadAllText(b));
        Assert.Equal(51, File.ReadAllLines(b).Length);
        var model = Path.Combine(folder.Root, "model");
        var trained = Run("train", "--data", windows, "--steps", "3", "--layers", "2", "--hidden", "16", "--out", model);
        Assert.True(trained.Code == ExitCodes.Ok, trained.Error);
    }

    [Fact]
    public void A_very_long_column_name_is_read_but_cut_short_in_messages()
    {
        using var folder = new TempFolder();
        var name = new string('n', 20_000);
        var good = folder.File("long-name.csv", $"{name},y\n1,2\n3,4\n");
        Assert.Equal(name, CsvTable.Read(good).Header![0]);
        var bad = folder.File("long-name-bad.csv", $"{name},y\n1,2\nbad,4\n");
        var result = TrainRefused(folder, bad);
        Assert.Contains($"{bad}: row 3, column 1 ('nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…' (20,000 characters))", result.Error);
        Assert.True(result.Error.Length < 1000, $"the message is {result.Error.Length} characters");
    }

    [Fact]
    public void A_column_name_with_quotes_and_commas_is_one_column()
    {
        using var folder = new TempFolder();
        var data = folder.File("quoted.csv", "\"a \"\"b\"\", c\",y\n1,2\noops,4\n");
        var result = TrainRefused(folder, data);
        Assert.Contains($"{data}: row 3, column 1 ('a \"b\", c'): 'oops' is not a number", result.Error);
    }

    [Fact]
    public void Duplicate_column_names_are_refused_naming_both_columns()
    {
        using var folder = new TempFolder();
        var data = folder.File("twice.csv", "x,y,x\n1,2,3\n4,5,6\n");
        var result = TrainRefused(folder, data);
        Assert.Contains($"{data}: row 1, column 3 ('x'): the column name repeats column 1", result.Error);
    }

    [Theory]
    [InlineData("one-cell", "row 1: a cell is longer than 65,536 characters")]
    [InlineData("many-cells", "row 1 has 500,000 cells; at most 100,000 columns are read")]
    [InlineData("unclosed-quote", "row 1: a cell is longer than 65,536 characters")]
    public void A_one_megabyte_line_is_refused_quickly_in_a_short_message(string shape, string message)
    {
        using var folder = new TempFolder();
        var line = shape switch
        {
            "one-cell" => new string('a', 1_000_000),
            "many-cells" => string.Join(',', Enumerable.Repeat("1", 500_000)),
            _ => "\"" + new string('a', 1_000_000),
        };
        var data = folder.File($"{shape}.csv", line + "\n1\n");
        var result = TrainRefused(folder, data);
        Assert.Contains($"{data}: {message}", result.Error);
        Assert.True(result.Error.Length < 1000, $"the message is {result.Error.Length} characters");
        var scores = Path.Combine(folder.Root, "scores.csv");
        Assert.Equal(ExitCodes.BadInput, Run("logprob", "--model", models.Plain, "--data", data, "--out", scores).Code);
        Assert.False(File.Exists(scores));
    }

    [Fact]
    public void Context_rows_that_do_not_match_the_data_rows_are_named()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 30, 5);
        var shortContext = GaussianCsv(folder, "short.csv", 29, 6, columns: 1);
        var longContext = GaussianCsv(folder, "long.csv", 31, 7, columns: 1);
        var scores = Path.Combine(folder.Root, "scores.csv");
        using (Chunking.Use(8))
        {
            var fewer = Run("logprob", "--model", models.Conditional, "--data", data, "--context", shortContext, "--out", scores);
            Assert.Equal(ExitCodes.BadInput, fewer.Code);
            Assert.Contains($"{shortContext}: has 29 rows, {data} has more: its data row 30 has no context row", fewer.Error);
            var more = Run("logprob", "--model", models.Conditional, "--data", data, "--context", longContext, "--out", scores);
            Assert.Equal(ExitCodes.BadInput, more.Code);
            Assert.Contains($"{longContext}: has more rows than the 30 of {data}", more.Error);
            var sampled = Run("sample", "--model", models.Conditional, "-n", "30", "--context", shortContext, "--out", scores);
            Assert.Equal(ExitCodes.BadInput, sampled.Code);
            Assert.Contains($"{shortContext}: expected 1 context row (used for every sample) or 30, got 29", sampled.Error);
        }
        Assert.False(File.Exists(scores));
        var trained = TrainRefused(folder, data, "--context", shortContext);
        Assert.Contains($"{shortContext}: has 29 rows, the data has 30", trained.Error);
    }

    /// <summary>Runs <c>train</c> on <paramref name="data"/> (2 steps, any extra arguments), expects it refused as bad
    /// input with no model written, and returns what it printed.</summary>
    private static (int Code, string Output, string Error) TrainRefused(TempFolder folder, string data, params string[] extra)
    {
        var model = Path.Combine(folder.Root, "model");
        var result = Run(["train", "--data", data, .. extra, "--steps", "2", "--out", model]);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.False(Directory.Exists(model));
        return result;
    }
}
