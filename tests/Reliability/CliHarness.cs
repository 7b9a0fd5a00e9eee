using System.Diagnostics;
using System.Globalization;
using Flows.Cli;

namespace Flows.Reliability.Tests;

/// <summary>Runs the flows tool in process (or as a child process, for memory and abort checks) and
/// writes the small CSV files the CLI reliability tests feed it.</summary>
internal static class CliHarness
{
    public static (int Code, string Output, string Error) Run(params string[] args) => Run(CancellationToken.None, args);

    public static (int Code, string Output, string Error) Run(CancellationToken cancel, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Cli.Run(args, output, error, cancel);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>Rows of a tilted Gaussian (y = 0.8·x + 0.3·noise, and more independent columns when asked), with a header.</summary>
    public static string GaussianCsv(TempFolder folder, string name, int rows, int seed, int columns = 2)
    {
        var random = new Random(seed);
        var lines = new List<string> { string.Join(',', Enumerable.Range(0, columns).Select(j => $"c{j}")) };
        var row = new double[columns];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < columns; j++) row[j] = Normal(random);
            if (columns > 1) row[1] = 0.8 * row[0] + 0.3 * row[1];
            lines.Add(string.Join(',', row.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        }
        return folder.File(name, string.Join('\n', lines) + "\n");
    }

    public static double Normal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>Trains a small model on <paramref name="data"/> (and <paramref name="context"/>) into folder/name.</summary>
    public static string Train(TempFolder folder, string name, string data, string? context = null, int steps = 50)
    {
        var model = Path.Combine(folder.Root, name);
        var args = new List<string> { "train", "--data", data, "--flow", "realnvp", "--steps", steps.ToString(CultureInfo.InvariantCulture), "--layers", "2", "--hidden", "16", "--out", model };
        if (context is not null) args.AddRange(["--context", context]);
        var result = Run([.. args]);
        Assert.True(result.Code == ExitCodes.Ok, result.Error);
        return model;
    }

    /// <summary>Every file under <paramref name="folder"/> with its bytes, to show that a failed command changed nothing.</summary>
    public static Dictionary<string, byte[]> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

    public static void AssertUnchanged(Dictionary<string, byte[]> before, string folder)
    {
        var after = Snapshot(folder);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (file, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[file]), $"{file} changed");
    }

    /// <summary>Runs the built tool as a child process; returns its exit code, stderr and peak resident memory (VmHWM).</summary>
    public static (int Code, string Error, long PeakBytes) RunProcess(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "flows.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        long peak = 0;
        // VmHWM only grows, so the last reading before the process ends is (nearly) its peak
        while (!process.WaitForExit(20))
            peak = Math.Max(peak, PeakResident(process.Id));
        process.WaitForExit();
        return (process.ExitCode, error.Result, peak);
    }

    private static long PeakResident(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { } // the process ended between the check and the read
        return 0;
    }
}
