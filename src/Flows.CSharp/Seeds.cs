using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>The façade's one rule for randomness: a seed repeats a draw; no seed draws fresh randomness.</summary>
internal static class Seeds
{
    // Random.Shared is safe across threads
    public static Generator GeneratorFor(ulong? seed) => new(seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue));
}
