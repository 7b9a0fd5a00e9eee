using Flows.CSharp;

namespace Flows.Examples.Posterior;

/// <summary>Logistic regression P(y = 1 | x) = σ(β₀ + β₁x₁ + β₂x₂) with the prior β ~ N(0, 1.5² I), on generated
/// data: <see cref="Trials"/> Bernoulli outcomes at each point of a 5 × 5 grid of (x₁, x₂) in [−1, 1]². Trials at one
/// point are exchangeable, so the likelihood needs only each point's count of successes.</summary>
internal sealed class LogisticModel
{
    /// <summary>Coefficients β₀, β₁, β₂.</summary>
    public const int Dimension = 3;

    /// <summary>Outcomes drawn at each grid point.</summary>
    public const int Trials = 8;

    /// <summary>The prior's standard deviation for every coefficient.</summary>
    public const double PriorStd = 1.5;

    private static readonly double[] Levels = [-1, -0.5, 0, 0.5, 1];

    private LogisticModel(double[] x1, double[] x2, int[] successes)
    {
        X1 = x1;
        X2 = x2;
        Successes = successes;
    }

    /// <summary>The grid points' first covariate.</summary>
    public double[] X1 { get; }

    /// <summary>The grid points' second covariate.</summary>
    public double[] X2 { get; }

    /// <summary>Successes of the <see cref="Trials"/> at each grid point.</summary>
    public int[] Successes { get; }

    /// <summary>Data drawn from the model with coefficients <paramref name="truth"/>.</summary>
    public static LogisticModel Generate(double[] truth, Random random)
    {
        var x1 = Levels.SelectMany(a => Levels.Select(_ => a)).ToArray();
        var x2 = Levels.SelectMany(_ => Levels).ToArray();
        var successes = new int[x1.Length];
        for (int g = 0; g < x1.Length; g++)
        {
            double p = 1 / (1 + Math.Exp(-(truth[0] + truth[1] * x1[g] + truth[2] * x2[g])));
            for (int t = 0; t < Trials; t++) successes[g] += random.NextDouble() < p ? 1 : 0;
        }
        return new LogisticModel(x1, x2, successes);
    }

    /// <summary>log p(y | β) + log p(β) of one β, in double precision: Σ k η − m log(1 + e^η) over the grid (the
    /// probability of the outcomes in the order drawn) plus the normalised prior. Its integral is the evidence.</summary>
    public double LogPosterior(ReadOnlySpan<double> beta)
    {
        double sum = 0;
        for (int g = 0; g < X1.Length; g++)
        {
            double eta = beta[0] + beta[1] * X1[g] + beta[2] * X2[g];
            double softplus = eta > 0 ? eta + Math.Log(1 + Math.Exp(-eta)) : Math.Log(1 + Math.Exp(eta));
            sum += Successes[g] * eta - Trials * softplus;
        }
        double squares = beta[0] * beta[0] + beta[1] * beta[1] + beta[2] * beta[2];
        return sum - squares / (2 * PriorStd * PriorStd) - 1.5 * Math.Log(2 * Math.PI * PriorStd * PriorStd);
    }

    /// <summary>The same unnormalised posterior as a target for <see cref="DensityModel.FitToDensity"/>: a C# function
    /// of the differentiable rows z = (β₀, β₁, β₂), one β per row.</summary>
    public TargetDensity Target() => TargetDensity.FromFunction(Dimension, z =>
    {
        Rows b0 = z.Column(0), b1 = z.Column(1), b2 = z.Column(2);
        var logPosterior = -z.Square().SumColumns() / (2 * PriorStd * PriorStd) - 1.5 * Math.Log(2 * Math.PI * PriorStd * PriorStd);
        for (int g = 0; g < X1.Length; g++)
        {
            var eta = b0 + b1 * X1[g] + b2 * X2[g];
            logPosterior = logPosterior + Successes[g] * eta - Trials * eta.Softplus();
        }
        return logPosterior;
    }, "logistic-regression posterior");
}
