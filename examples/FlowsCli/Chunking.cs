namespace Flows.Cli;

/// <summary>How many rows 'flows logprob' and 'flows sample' hold at once, so that memory does not grow
/// with the number of rows.</summary>
internal static class Chunking
{
    private const int DefaultRows = 65_536;
    private static readonly AsyncLocal<int?> Override = new();

    /// <summary>Rows per chunk.</summary>
    public static int Rows => Override.Value ?? DefaultRows;

    /// <summary>Uses <paramref name="rows"/> per chunk in the calling flow until disposed (tests).</summary>
    public static IDisposable Use(int rows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        var before = Override.Value;
        Override.Value = rows;
        return new Restore(() => Override.Value = before);
    }

    /// <summary>The seed of chunk <paramref name="index"/> of a draw seeded with <paramref name="seed"/>: the
    /// seed itself for the first chunk (so a small draw equals the façade's), a SplitMix64 mix after.</summary>
    public static ulong Seed(ulong seed, long index)
    {
        if (index == 0) return seed;
        ulong z = seed + 0x9E3779B97F4A7C15UL * (ulong)index;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
