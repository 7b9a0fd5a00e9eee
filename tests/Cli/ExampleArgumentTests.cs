using System.Diagnostics;

namespace Flows.Cli.Tests;

/// <summary>The example programs share one command-line convention: a bad argument prints what was wrong and the
/// usage on stderr and exits with code 2, never a stack trace.</summary>
public class ExampleArgumentTests
{
    private static (int Code, string Error) Run(string example, params string[] arguments)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Flows.sln"))) root = root.Parent;
        Assert.NotNull(root);
        // "CSharp/QuickStart": the C# examples sit one folder deeper
        var dll = Path.Combine(root!.FullName, "examples", example, "bin", "Release", "net10.0", Path.GetFileName(example) + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(dll);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), $"{example} did not exit");
        return (process.ExitCode, error.Result);
    }

    [Theory]
    [InlineData("TwoMoons", new[] { "two-moons.png" }, "unexpected argument 'two-moons.png'")]
    [InlineData("TwoMoons", new[] { "--outptu", "x.png" }, "unknown option or missing value '--outptu'")]
    [InlineData("TwoMoons", new[] { "--device", "gpu" }, "--device must be cpu, cuda or cuda:N, got 'gpu'")]
    [InlineData("Reflection", new[] { "--dynamics", "spline" }, "--dynamics must be mlp or galerkin, got 'spline'")]
    [InlineData("CSharp/QuickStart", new[] { "--steps", "many" }, "--steps must be a whole number of at least 1, got 'many'")]
    [InlineData("CSharp/AnomalyDetection", new[] { "--output", "x.png" }, "unknown option or missing value '--output'")]
    [InlineData("CSharp/AnomalyDetection", new[] { "--steps", "0" }, "--steps must be a whole number of at least 1, got '0'")]
    [InlineData("CSharp/Posterior", new[] { "--seed", "-1" }, "--seed must be a whole number of at least 0, got '-1'")]
    [InlineData("CSharp/Posterior", new[] { "posterior.png" }, "unexpected argument 'posterior.png'")]
    public void A_bad_argument_prints_what_was_wrong_and_exits_with_2(string example, string[] arguments, string message)
    {
        var (code, error) = Run(example, arguments);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", error); // no stack trace
    }
}
