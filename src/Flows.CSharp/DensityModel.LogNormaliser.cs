namespace Flows.CSharp;

/// <summary>The normalising constant of a target density, estimated with the model as an importance sampler.</summary>
public sealed partial class DensityModel
{
    /// <summary>Estimates log Z of an unnormalised <paramref name="target"/> (for a Bayesian posterior, the log
    /// evidence) by importance sampling from this model, typically one fitted with
    /// <see cref="FitToDensity"/>; the effective sample size says how far to trust it.</summary>
    /// <param name="target">The unnormalised log-density; its dimension must equal <see cref="Dimension"/>.</param>
    /// <param name="samples">Draws from the model (at least 2).</param>
    /// <param name="seed">Makes the estimate repeatable; null draws fresh randomness.</param>
    /// <exception cref="ArgumentException">The target's dimension differs from the model's.</exception>
    /// <exception cref="InvalidOperationException">The model is conditional, or the target is NaN or +∞ at a draw,
    /// or zero at every draw.</exception>
    public LogNormaliserEstimate EstimateLogNormaliser(TargetDensity target, int samples = 10_000, ulong? seed = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (target.Dimension != Dimension) throw new ArgumentException($"the target has {target.Dimension} columns; the model has {Dimension}", nameof(target));
        if (samples < 2) throw new ArgumentOutOfRangeException(nameof(samples), samples, "must be at least 2");
        var (rows, logQ) = ModelModule.sampleAndLogProb(UnconditionalDraw(samples), Seeds.GeneratorFor(seed), samples, model);
        // the target in double precision, at the rows the model drew
        var drawn = ArrayConversions.ToMatrix(rows);
        var logP = target.Evaluate(ToDoubles(drawn));
        var q = logQ.toArray64();
        var logW = new double[samples];
        for (int i = 0; i < samples; i++)
        {
            logW[i] = logP[i] - q[i];
            if (double.IsNaN(logW[i]) || double.IsPositiveInfinity(logW[i]))
                throw new InvalidOperationException($"the target '{target.Name}' is {logP[i]} where the model's log-density is {q[i]}; the weights need a finite target");
        }
        return Summarise(logW);
    }

    private static double[,] ToDoubles(float[,] values)
    {
        var result = new double[values.GetLength(0), values.GetLength(1)];
        for (int i = 0; i < values.GetLength(0); i++)
            for (int j = 0; j < values.GetLength(1); j++) result[i, j] = values[i, j];
        return result;
    }

    // log mean w, its delta-method standard error and Kish's ESS, from log-weights shifted by their maximum
    private static LogNormaliserEstimate Summarise(double[] logW)
    {
        double top = logW.Max();
        if (double.IsNegativeInfinity(top)) throw new InvalidOperationException("the target is zero at every draw of the model");
        int n = logW.Length;
        var w = Array.ConvertAll(logW, l => Math.Exp(l - top));
        double sum = w.Sum(), sumSquares = w.Sum(v => v * v), mean = sum / n;
        double variance = (sumSquares - n * mean * mean) / (n - 1);
        double standardError = Math.Sqrt(Math.Max(variance, 0)) / (mean * Math.Sqrt(n));
        return new LogNormaliserEstimate(top + Math.Log(mean), standardError, sum * sum / sumSquares, n);
    }
}
