using Flows.Distributions;
using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>An unnormalised log-density for <see cref="DensityModel.FitToDensity"/>: one of the built-in
/// two-dimensional targets of the flow papers, a Gaussian mixture, or a C# function written with
/// the differentiable <see cref="Rows"/> operations (<see cref="FromFunction"/>).</summary>
public sealed class TargetDensity
{
    private TargetDensity(string name, int dimension, Func<Tensor, Tensor> logDensity)
    {
        Name = name;
        Dimension = dimension;
        LogDensity = logDensity;
    }

    /// <summary>What the target is, in words.</summary>
    public string Name { get; }

    /// <summary>Columns of the target's rows.</summary>
    public int Dimension { get; }

    internal Func<Tensor, Tensor> LogDensity { get; }

    /// <summary>The unnormalised log-density at each row, computed in double precision: to check a target written
    /// with <see cref="FromFunction"/>, or to draw it on a grid.</summary>
    /// <param name="rows">Rows of <see cref="Dimension"/> values.</param>
    public double[] Evaluate(double[,] rows) => LogDensity(ArrayConversions.ToRows(rows, Dimension, nameof(rows))).toArray64();

    /// <summary>The gradient of the log-density at each row (the score ∇ log p̃), by reverse-mode differentiation
    /// in double precision: for gradient-based samplers (Langevin, HMC) and for checking a target.</summary>
    /// <param name="rows">Rows of <see cref="Dimension"/> values.</param>
    public double[,] Gradient(double[,] rows)
    {
        var x = ArrayConversions.ToRows(rows, Dimension, nameof(rows));
        var g = Ad.grad(FSharpInterop.Function<Tensor, Tensor>(z => LogDensity(z).sum()), x);
        var values = g.toArray64();
        var result = new double[rows.GetLength(0), Dimension];
        Buffer.BlockCopy(values, 0, result, 0, values.Length * sizeof(double));
        return result;
    }

    /// <summary>The two-moons density (normflows' TwoMoons): a ring of radius 2 with two modes.</summary>
    public static TargetDensity TwoMoons { get; } = new("two moons", 2, z => Targets.twoMoons(z));

    /// <summary>A ring of radius 4 with two modes at z₁ = ±2 (the planar-flow example).</summary>
    public static TargetDensity TwoModeRing { get; } = new("two-mode ring", 2, z => Targets.twoModeRing(z));

    /// <summary>Rezende &amp; Mohamed's energy U1 (a ring with two modes), as −U1.</summary>
    public static TargetDensity RezendeU1 { get; } = new("U1", 2, z => Targets.u1(z));

    /// <summary>Rezende &amp; Mohamed's energy U2 (a sine wave), as −U2.</summary>
    public static TargetDensity RezendeU2 { get; } = new("U2", 2, z => Targets.u2(z));

    /// <summary>Rezende &amp; Mohamed's energy U3 (two split sine waves), as −U3.</summary>
    public static TargetDensity RezendeU3 { get; } = new("U3", 2, z => Targets.u3(z));

    /// <summary>Rezende &amp; Mohamed's energy U4 (a sine wave and a sigmoid step), as −U4.</summary>
    public static TargetDensity RezendeU4 { get; } = new("U4", 2, z => Targets.u4(z));

    /// <summary>An equal mixture of isotropic Gaussians N(centre_k, std² I), normalised.</summary>
    /// <param name="centres">The component means, all of the same length (the dimension).</param>
    /// <param name="std">The components' standard deviation.</param>
    public static TargetDensity GaussianMixture(double[][] centres, double std)
    {
        ArgumentNullException.ThrowIfNull(centres);
        if (centres.Length == 0 || centres[0] is null || centres[0].Length == 0) throw new ArgumentException("at least one non-empty centre is needed", nameof(centres));
        for (int k = 0; k < centres.Length; k++)
        {
            if (centres[k] is null || centres[k].Length != centres[0].Length)
                throw new ArgumentException($"centre {k} has {centres[k]?.Length ?? 0} values; centre 0 has {centres[0].Length}", nameof(centres));
            for (int j = 0; j < centres[k].Length; j++)
                if (!double.IsFinite(centres[k][j])) throw new ArgumentException($"centre {k}, column {j} is {centres[k][j]}; must be finite", nameof(centres));
        }
        if (!(std > 0) || !double.IsFinite(std)) throw new ArgumentOutOfRangeException(nameof(std), std, "must be a finite number above 0");
        var copy = centres.Select(c => (double[])c.Clone()).ToArray();
        return new($"mixture of {copy.Length} Gaussians", copy[0].Length, z => Targets.gaussianMixture(copy, std, z));
    }

    /// <summary>A target written in C#: <paramref name="logDensity"/> maps the input rows [n; d] to one
    /// unnormalised log-density per row, using only <see cref="Rows"/> operations (so that it can be differentiated).</summary>
    /// <param name="dimension">Columns d of the input rows.</param>
    /// <param name="logDensity">The log-density, for example <c>z =&gt; -0.5 * z.Square().SumColumns()</c>.</param>
    /// <param name="name">What the target is, in words.</param>
    public static TargetDensity FromFunction(int dimension, Func<Rows, Rows> logDensity, string name = "custom")
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "must be at least 1");
        ArgumentNullException.ThrowIfNull(logDensity);
        return new(name, dimension, z =>
        {
            var result = logDensity(new Rows(z)) ?? throw new InvalidOperationException($"the log-density '{name}' returned null");
            var t = result.Tensor;
            if (t.dim == 2 && t.shape[1] == 1) t = t.squeeze(1);
            if (t.dim != 1 || t.shape[0] != z.shape[0])
                throw new InvalidOperationException($"the log-density '{name}' must give one value per row ({z.shape[0]}); it gave shape [{string.Join(", ", t.shape)}] (use Column or SumColumns)");
            return t;
        });
    }
}
