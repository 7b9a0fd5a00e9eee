using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Flows.Cli;
using Flows.CSharp;
using static Flows.Reliability.Tests.CliHarness;

namespace Flows.Reliability.Tests;

/// <summary>Ctrl+C, in process: the token handed to Cli.Run stops training, which saves the partial
/// model and says at which step; other commands leave no output behind.</summary>
public sealed partial class CliCancellationTests
{
    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    /// <summary>Cancels once it has been handed <paramref name="lines"/> progress lines, as a user watching them would.</summary>
    private sealed class CancellingWriter(CancellationTokenSource source, int lines) : StringWriter
    {
        public int ProgressLines { get; private set; }

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.StartsWith("step ", StringComparison.Ordinal) && ++ProgressLines == lines)
                source.Cancel();
        }
    }

    [Fact]
    public void Cancelling_train_saves_the_partial_model_says_the_step_and_exits_130()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 300, 1);
        var model = Path.Combine(folder.Root, "model");
        using var source = new CancellationTokenSource();
        var output = new CancellingWriter(source, lines: 4);
        var error = new StringWriter();
        // progress lines come at the first report, then every 200 of the 2,000 steps: the fourth is step 600
        var code = Cli.Cli.Run(["train", "--data", data, "--flow", "realnvp", "--layers", "2", "--hidden", "16", "--steps", "2000", "--validation", "0", "--out", model],
            output, error, source.Token);

        Assert.Equal(ExitCodes.Cancelled, code);
        Assert.Equal(4, output.ProgressLines);
        var said = Regex.Match(error.ToString(), @"cancelled at step (\d+) of 2000: wrote the partial model \(the best so far\) to (.+)");
        Assert.True(said.Success, error.ToString());
        var step = int.Parse(said.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(step, 600, 1999);
        Assert.Equal(model, said.Groups[2].Value.Trim());

        var saved = DensityModel.Load(model);
        var rows = CsvTable.Read(data).Values;
        var scores = saved.LogProb(rows);
        Assert.All(scores, s => Assert.True(double.IsFinite(s)));
        // 600 steps have taught it the tilt: the untrained flow scores about −2.68, the data law −1.63
        Assert.True(scores.Average() > -2.3, $"mean log p {scores.Average()}");
    }

    [Fact]
    public void Cancelling_before_the_first_step_writes_no_model()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 2);
        var model = Path.Combine(folder.Root, "model");
        var result = Run(new CancellationToken(canceled: true), "train", "--data", data, "--steps", "100", "--out", model);
        Assert.Equal(ExitCodes.Cancelled, result.Code);
        Assert.False(Directory.Exists(model));
    }

    [Fact]
    public void Cancelled_logprob_and_sample_leave_no_output_and_no_temporary()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 3);
        var model = Train(folder, "model", data, steps: 3);
        var output = Path.Combine(folder.Root, "out.csv");
        var cancelled = new CancellationToken(canceled: true);
        Assert.Equal(ExitCodes.Cancelled, Run(cancelled, "logprob", "--model", model, "--data", data, "--out", output).Code);
        Assert.Equal(ExitCodes.Cancelled, Run(cancelled, "sample", "--model", model, "-n", "100", "--out", output).Code);
        Assert.Equal(new[] { "d.csv" }, Directory.GetFiles(folder.Root).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Sigterm_to_the_tool_saves_the_partial_model_and_exits_130()
    {
        if (!OperatingSystem.IsLinux()) return; // signals are a POSIX matter
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 300, 4);
        var model = Path.Combine(folder.Root, "model");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "flows.dll"), "train", "--data", data, "--flow", "realnvp", "--layers", "2", "--hidden", "16",
                                  "--steps", "1000000", "--validation", "0", "--out", model })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var first = process.StandardOutput.ReadLine();
        Assert.StartsWith("training realnvp", first);
        // the first progress line says training is under way, however slow the machine is today
        var progress = process.StandardOutput.ReadLine();
        Assert.StartsWith("step ", progress);
        Assert.Equal(0, Kill(process.Id, 15));
        Assert.True(process.WaitForExit(30_000), "the tool did not stop within 30 s of SIGTERM");
        Assert.Equal(ExitCodes.Cancelled, process.ExitCode);
        var stderr = await error;
        var said = Regex.Match(stderr, @"cancelled at step (\d+) of 1000000: wrote the partial model");
        Assert.True(said.Success, stderr);
        Assert.InRange(int.Parse(said.Groups[1].Value, CultureInfo.InvariantCulture), 1, 999_999);
        Assert.All(DensityModel.Load(model).LogProb(CsvTable.Read(data).Values), s => Assert.True(double.IsFinite(s)));
    }
}
