using Xunit.Abstractions;
using System.Globalization;
using Flows.Cli;
using Flows.CSharp;
using static Flows.Reliability.Tests.CliHarness;

namespace Flows.Reliability.Tests;

/// <summary>logprob and sample work a chunk of rows at a time: the results equal the façade's one-shot
/// results, and memory stays flat however many rows go through.</summary>
public sealed class CliChunkingTests(TrainedModels models, ITestOutputHelper log) : IClassFixture<TrainedModels>
{
    private static double[] Column(string csv) =>
        File.ReadLines(csv).Skip(1).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();

    // The numbers of a CSV that 'flows sample' wrote: after the training data's header, when it had one.
    private static float[,] Rows(string csv)
    {
        var lines = File.ReadAllLines(csv);
        if (!float.TryParse(lines[0].Split(',')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out _)) lines = lines[1..];
        var columns = lines[0].Split(',').Length;
        var rows = new float[lines.Length, columns];
        for (int i = 0; i < lines.Length; i++)
        {
            var cells = lines[i].Split(',');
            for (int j = 0; j < columns; j++) rows[i, j] = float.Parse(cells[j], CultureInfo.InvariantCulture);
        }
        return rows;
    }

    [Fact]
    public void Chunked_logprob_equals_the_facade_on_the_whole_table()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 100, 11);
        var context = GaussianCsv(folder, "c.csv", 100, 12, columns: 1);
        var plain = Path.Combine(folder.Root, "plain.csv");
        var conditional = Path.Combine(folder.Root, "conditional.csv");
        using (Chunking.Use(7))
        {
            Assert.Equal(ExitCodes.Ok, Run("logprob", "--model", models.Plain, "--data", data, "--out", plain).Code);
            Assert.Equal(ExitCodes.Ok, Run("logprob", "--model", models.Conditional, "--data", data, "--context", context, "--out", conditional).Code);
        }
        var rows = CsvTable.Read(data).Values;
        var contextRows = CsvTable.Read(context).Values;
        // float32 products may round differently with the number of rows scored together
        AssertClose(DensityModel.Load(models.Plain).LogProb(rows), Column(plain));
        AssertClose(DensityModel.Load(models.Conditional).LogProb(rows, contextRows), Column(conditional));
    }

    [Fact]
    public void Chunked_sample_is_the_facade_draw_chunk_by_chunk_and_a_small_draw_is_the_facade_draw()
    {
        using var folder = new TempFolder();
        var model = DensityModel.Load(models.Plain);
        var chunked = Path.Combine(folder.Root, "chunked.csv");
        using (Chunking.Use(7))
            Assert.Equal(ExitCodes.Ok, Run("sample", "--model", models.Plain, "-n", "30", "--seed", "5", "--out", chunked).Code);
        var expected = new List<float>();
        for (int k = 0, done = 0; done < 30; k++, done += 7)
            expected.AddRange(model.Sample(Math.Min(7, 30 - done), Chunking.Seed(5, k)).Cast<float>());
        Assert.Equal(expected, Rows(chunked).Cast<float>());
        // the chunks are not one seed repeated
        Assert.NotEqual(expected.Take(14), expected.Skip(14).Take(14));

        var whole = Path.Combine(folder.Root, "whole.csv");
        Assert.Equal(ExitCodes.Ok, Run("sample", "--model", models.Plain, "-n", "30", "--seed", "5", "--out", whole).Code);
        Assert.Equal(model.Sample(30, 5).Cast<float>(), Rows(whole).Cast<float>());
    }

    [Fact]
    public void Chunked_conditional_sample_uses_one_context_row_for_all_or_one_per_sample()
    {
        using var folder = new TempFolder();
        var model = DensityModel.Load(models.Conditional);
        var one = folder.File("one.csv", "k\n0.7\n");
        var each = GaussianCsv(folder, "each.csv", 20, 13, columns: 1);
        var fromOne = Path.Combine(folder.Root, "from-one.csv");
        var fromEach = Path.Combine(folder.Root, "from-each.csv");
        using (Chunking.Use(6))
        {
            Assert.Equal(ExitCodes.Ok, Run("sample", "--model", models.Conditional, "-n", "20", "--context", one, "--seed", "3", "--out", fromOne).Code);
            Assert.Equal(ExitCodes.Ok, Run("sample", "--model", models.Conditional, "-n", "20", "--context", each, "--seed", "3", "--out", fromEach).Code);
        }
        var eachRows = CsvTable.Read(each).Values;
        var expectedOne = new List<float>();
        var expectedEach = new List<float>();
        for (int k = 0, done = 0; done < 20; k++, done += 6)
        {
            int n = Math.Min(6, 20 - done);
            var repeated = new float[n, 1];
            var slice = new float[n, 1];
            for (int i = 0; i < n; i++) { repeated[i, 0] = 0.7f; slice[i, 0] = (float)eachRows[done + i, 0]; }
            expectedOne.AddRange(model.Sample(repeated, Chunking.Seed(3, k)).Cast<float>());
            expectedEach.AddRange(model.Sample(slice, Chunking.Seed(3, k)).Cast<float>());
        }
        Assert.Equal(expectedOne, Rows(fromOne).Cast<float>());
        Assert.Equal(expectedEach, Rows(fromEach).Cast<float>());
    }

    [Fact]
    public void Sampling_two_million_rows_keeps_peak_memory_far_below_holding_them()
    {
        // Drawn at once, 2,000,000 rows through a RealNVP with 16 hidden units hold at least one hidden
        // activation of 2,000,000 × 16 float32 (128 MB) besides the rows themselves; in chunks of 65,536
        // rows the peak resident memory grows by a few tens of MB over a 1,000-row draw.
        using var folder = new TempFolder();
        var model = Path.Combine(folder.Root, "model");
        DensityModel.CreateRealNvp(2, 2, 16, 0, 1).Save(model);
        var small = RunProcess(null, "sample", "--model", model, "-n", "1000", "--out", Path.Combine(folder.Root, "small.csv"));
        Assert.True(small.Code == ExitCodes.Ok, small.Error);
        var samples = Path.Combine(folder.Root, "samples.csv");
        var large = RunProcess(null, "sample", "--model", model, "-n", "2000000", "--out", samples);
        Assert.True(large.Code == ExitCodes.Ok, large.Error);
        long oneActivation = 2_000_000L * 16 * sizeof(float);
        log.WriteLine($"peak resident memory: {small.PeakBytes / 1e6:F0} MB for 1,000 rows, {large.PeakBytes / 1e6:F0} MB for 2,000,000");
        Assert.True(large.PeakBytes - small.PeakBytes < oneActivation,
            $"peak {large.PeakBytes / 1e6:F0} MB for 2,000,000 rows, {small.PeakBytes / 1e6:F0} MB for 1,000");
        using var reader = new CsvRowReader(samples, HeaderMode.Absent);
        long rows = 0;
        while (reader.ReadChunk(1 << 16) is { } chunk) rows += chunk.GetLength(0);
        Assert.Equal(2_000_000, rows);
        Assert.Equal(2, reader.Columns);
    }

    [Fact]
    public void Running_out_of_memory_is_a_failure_with_a_message_not_an_abort()
    {
        // a 20,000-unit hidden layer needs 1.6 GB for one weight matrix; the child's heap is capped at 256 MB
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 14);
        var model = Path.Combine(folder.Root, "model");
        var result = RunProcess(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x10000000" },
            "train", "--data", data, "--flow", "realnvp", "--layers", "1", "--hidden", "20000", "--steps", "1", "--out", model);
        Assert.True(result.Code == ExitCodes.Failure, $"exit {result.Code}: {result.Error}");
        Assert.Contains("out of memory", result.Error);
        Assert.False(Directory.Exists(model));
    }

    private static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"row {i}: {expected[i]} against {actual[i]}");
    }
}
