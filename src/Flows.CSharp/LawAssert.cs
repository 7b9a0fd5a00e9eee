namespace Flows.CSharp;

/// <summary>Law reports as test assertions: a user's test of a layer is one line,
/// <c>LawAssert.Holds(BijectorLaws.Check(layer))</c>, in xunit or any other framework.</summary>
public static class LawAssert
{
    /// <summary>Returns when no law failed; otherwise throws, listing each failed law with its worst error,
    /// the input that showed it and what was compared.</summary>
    /// <exception cref="LawFailedException">At least one law failed.</exception>
    public static void Holds(LawReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Passed) return;
        var lines = report.Laws.Where(l => !l.Passed)
            .Select(l => $"{l.Law}: worst error {l.WorstError:G3} at input [{string.Join(", ", l.Input.Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)))}]: {l.Detail}");
        throw new LawFailedException($"{report.Layer}: {report.FailedLaws.Count} law(s) failed{Environment.NewLine}{string.Join(Environment.NewLine, lines)}", report);
    }
}

/// <summary>Thrown by <see cref="LawAssert.Holds"/> when a law fails.</summary>
public sealed class LawFailedException : Exception
{
    internal LawFailedException(string message, LawReport report) : base(message) => Report = report;

    /// <summary>The report with the failed laws.</summary>
    public LawReport Report { get; }
}
