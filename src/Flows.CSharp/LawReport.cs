namespace Flows.CSharp;

/// <summary>Every law checked on one layer (<see cref="BijectorLaws.Check"/>).</summary>
public sealed class LawReport
{
    internal LawReport(string layer, IReadOnlyList<LawResult> laws)
    {
        Layer = layer;
        Laws = laws;
    }

    /// <summary>The name of the layer checked.</summary>
    public string Layer { get; }

    /// <summary>One result per law, in the order of <see cref="BijectorLaws.Names"/>.</summary>
    public IReadOnlyList<LawResult> Laws { get; }

    /// <summary>True when no law failed.</summary>
    public bool Passed => Laws.All(l => l.Passed);

    /// <summary>The names of the laws that failed.</summary>
    public IReadOnlyList<string> FailedLaws => Laws.Where(l => !l.Passed).Select(l => l.Law).ToArray();

    /// <summary><c>passed</c>, or <c>failed: </c> and the failed laws separated by commas.</summary>
    public string Summary => Passed ? "passed" : $"failed: {string.Join(", ", FailedLaws)}";

    /// <summary>The layer's name and <see cref="Summary"/>.</summary>
    public override string ToString() => $"{Layer} {Summary}";
}
