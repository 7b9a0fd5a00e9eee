using System.Globalization;

namespace Flows.Examples;

/// <summary>A bad command line; the message says what was wrong and how the program is called.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The C# examples' command line, the convention the F# examples share: "--name value" pairs only;
/// <c>--steps</c>, <c>--seed</c> and <c>--output</c> where they apply. Compiled into each example project.</summary>
internal sealed class ExampleArguments
{
    private readonly Dictionary<string, string> values;

    private ExampleArguments(Dictionary<string, string> values) => this.values = values;

    /// <summary>Parses <paramref name="args"/> against the option names <paramref name="known"/> (without "--").</summary>
    /// <exception cref="UsageException">An argument that is not a known option followed by its value.</exception>
    public static ExampleArguments Parse(string[] args, params string[] known)
    {
        string usage = string.Join(" ", known.Select(k => $"[--{k} value]"));
        var values = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new UsageException($"unexpected argument '{args[i]}'; usage: {usage}");
            if (!known.Contains(args[i][2..]) || i + 1 >= args.Length)
                throw new UsageException($"unknown option or missing value '{args[i]}'; usage: {usage}");
            values[args[i][2..]] = args[i + 1];
        }
        return new ExampleArguments(values);
    }

    /// <summary>A whole-number option of at least <paramref name="minimum"/>, or <paramref name="fallback"/>.</summary>
    public int Int(string name, int fallback, int minimum = 1) =>
        !values.TryGetValue(name, out var text) ? fallback
        : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= minimum ? v
        : throw new UsageException($"--{name} must be a whole number of at least {minimum}, got '{text}'");

    /// <summary>The <c>--seed</c> option, or <paramref name="fallback"/>.</summary>
    public ulong Seed(ulong fallback) =>
        !values.TryGetValue("seed", out var text) ? fallback
        : ulong.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : throw new UsageException($"--seed must be a whole number of at least 0, got '{text}'");

    /// <summary>A text option, or null when it was not given.</summary>
    public string? Text(string name) => values.GetValueOrDefault(name);

    /// <summary>Runs an example's program: a bad command line prints its message (with the usage) on stderr and
    /// gives exit code 2, instead of a stack trace.</summary>
    public static int Run(string[] args, Func<string[], int> program)
    {
        try
        {
            return program(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}
