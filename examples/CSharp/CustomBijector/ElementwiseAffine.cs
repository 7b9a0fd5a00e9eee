using Flows.CSharp;

namespace Flows.Examples.CustomLayers;

/// <summary>Three C# bijectors y = x·exp(s) + t per column (learnable log-scale s and shift t): a correct
/// one, one whose log-det is off by a constant, and one whose inverse is not the inverse.</summary>
public static class ElementwiseAffine
{
    /// <summary>Forward y = x·exp(s) + t with log|det| = Σ s; inverse x = (y − t)·exp(−s) with −Σ s.</summary>
    public static CustomBijector Correct { get; } = new("custom.elementwise-affine", new[] { "logScale", "shift" },
        forward: (p, x) => new MapResult(x * p["logScale"].Exp() + p["shift"], p["logScale"]),
        inverse: (p, y) => new MapResult((y - p["shift"]) * (-p["logScale"]).Exp(), -p["logScale"]));

    /// <summary>The same map with log-dets off by 0.5 per column, forward and inverse alike.</summary>
    public static CustomBijector LogDetOffByConstant { get; } = new("custom.affine-log-det-off", new[] { "logScale", "shift" },
        forward: (p, x) => new MapResult(x * p["logScale"].Exp() + p["shift"], p["logScale"] + 0.5),
        inverse: (p, y) => new MapResult((y - p["shift"]) * (-p["logScale"]).Exp(), -p["logScale"] - 0.5));

    /// <summary>The same forward map; the inverse forgets to take the shift off.</summary>
    public static CustomBijector WrongInverse { get; } = new("custom.affine-wrong-inverse", new[] { "logScale", "shift" },
        forward: (p, x) => new MapResult(x * p["logScale"].Exp() + p["shift"], p["logScale"]),
        inverse: (p, y) => new MapResult(y * (-p["logScale"]).Exp(), -p["logScale"]));

    /// <summary>All three, in the order the example reports them.</summary>
    public static IReadOnlyList<CustomBijector> All { get; } = new[] { Correct, LogDetOffByConstant, WrongInverse };

    /// <summary>Registers each (so that they save and load), checks the laws on a 2-column layer away from
    /// its starting point, and returns one line per bijector: <c>name passed</c> or <c>name failed: laws</c>.</summary>
    public static IReadOnlyList<string> CheckAll()
    {
        var lines = new List<string>();
        foreach (var bijector in All)
        {
            bijector.Register();
            lines.Add(BijectorLaws.Check(bijector.Create(2, spread: 0.5, seed: 1)).ToString());
        }
        return lines;
    }
}
