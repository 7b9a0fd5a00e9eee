using System.Globalization;

namespace Flows.Examples;

/// <summary>The examples' figure lines, "name value" in the invariant culture, as the F# examples print them.</summary>
internal static class Figures
{
    /// <summary>Writes <paramref name="name"/> and <paramref name="value"/> with <paramref name="digits"/> decimals.</summary>
    public static void Write(TextWriter log, string name, double value, int digits = 4) =>
        log.WriteLine($"{name} {value.ToString("F" + digits, CultureInfo.InvariantCulture)}");
}
