using Flows.CSharp;

namespace Flows.Examples.Posterior;

/// <summary>How long the flow trains and the chain runs.</summary>
/// <param name="Steps">Reverse-KL steps of the flow.</param>
/// <param name="Seed">Seed of the data, the flow, the chain and the draws.</param>
/// <param name="ChainLength">Metropolis iterations after the burn-in.</param>
/// <param name="Draws">Draws from the flow for its moments and log Z.</param>
internal sealed record PosteriorSettings(int Steps, ulong Seed, int ChainLength = 400_000, int Draws = 20_000);

/// <summary>The flow's posterior against the references.</summary>
/// <param name="FlowMean">Posterior means from the flow's draws.</param>
/// <param name="FlowStd">Posterior standard deviations from the flow's draws.</param>
/// <param name="Chain">The Metropolis reference.</param>
/// <param name="LogZ">log Z (the log evidence) estimated with the flow, with its ESS.</param>
/// <param name="ReferenceLogZ">log Z by importance sampling from a Gaussian fitted to the chain.</param>
/// <param name="ReferenceLogZError">Standard error of <paramref name="ReferenceLogZ"/>.</param>
internal sealed record PosteriorResult(double[] FlowMean, double[] FlowStd, ChainSummary Chain, LogNormaliserEstimate LogZ,
    double ReferenceLogZ, double ReferenceLogZError);

/// <summary>Fit a flow to the posterior of a logistic regression and compare it with MCMC.</summary>
internal static class PosteriorStudy
{
    private static readonly double[] Truth = [-0.5, 1.0, -0.7];
    private static readonly string[] Names = ["β₀", "β₁", "β₂"];

    public static PosteriorResult Run(PosteriorSettings settings, TextWriter log)
    {
        var random = new Random((int)settings.Seed);
        var data = LogisticModel.Generate(Truth, random);
        log.WriteLine($"data: {data.Successes.Sum()} successes in {data.Successes.Length * LogisticModel.Trials} trials at {data.Successes.Length} points; true β = ({string.Join(", ", Truth)})");

        var model = DensityModel.CreateNeuralSpline(LogisticModel.Dimension, layers: 4, hidden: 32, seed: settings.Seed)
            .FitToDensity(data.Target(), new FitOptions(Steps: settings.Steps, Seed: settings.Seed));
        log.WriteLine($"flow: {model.LastFit!.StepsRun} reverse-KL steps in {model.LastFit.Elapsed.TotalSeconds:F1} s, final loss {model.LastFit.FinalLoss:F3}");
        var draws = model.Sample(settings.Draws, seed: settings.Seed);
        var (flowMean, flowStd) = Moments(draws);

        var chain = Metropolis.Run(b => data.LogPosterior(b), LogisticModel.Dimension, settings.ChainLength, 20_000, random);
        log.WriteLine($"random-walk Metropolis: {settings.ChainLength:N0} iterations after 20,000 of burn-in, acceptance {chain.Acceptance:F2}");
        log.WriteLine("coefficient   flow mean ± sd      MCMC mean ± sd");
        for (int j = 0; j < LogisticModel.Dimension; j++)
            log.WriteLine($"{Names[j],-11}  {flowMean[j],8:F3} ± {flowStd[j]:F3}   {chain.Mean[j],8:F3} ± {chain.Std[j]:F3}");

        var logZ = model.EstimateLogNormaliser(data.Target(), settings.Draws, seed: settings.Seed + 1);
        var (referenceLogZ, referenceError) = GaussianEvidence.Estimate(b => data.LogPosterior(b), chain, 200_000, random);
        log.WriteLine($"log evidence: flow {logZ.LogZ:F4} ± {logZ.StandardError:F4}, ESS {logZ.EffectiveSampleSize:F0} of {logZ.Samples} " +
            $"({logZ.EffectiveSampleFraction:P1}); Gaussian importance sampling {referenceLogZ:F4} ± {referenceError:F4}");
        for (int j = 0; j < LogisticModel.Dimension; j++)
        {
            Figures.Write(log, $"posterior.beta{j}.flow_mean", flowMean[j]);
            Figures.Write(log, $"posterior.beta{j}.mcmc_mean", chain.Mean[j]);
            Figures.Write(log, $"posterior.beta{j}.flow_sd", flowStd[j]);
            Figures.Write(log, $"posterior.beta{j}.mcmc_sd", chain.Std[j]);
        }
        Figures.Write(log, "posterior.log_z", logZ.LogZ);
        Figures.Write(log, "posterior.log_z_gaussian_is", referenceLogZ);
        Figures.Write(log, "posterior.ess_fraction", logZ.EffectiveSampleFraction);
        return new PosteriorResult(flowMean, flowStd, chain, logZ, referenceLogZ, referenceError);
    }

    private static (double[] Mean, double[] Std) Moments(float[,] rows)
    {
        int n = rows.GetLength(0), d = rows.GetLength(1);
        var mean = Enumerable.Range(0, d).Select(j => Enumerable.Range(0, n).Average(i => (double)rows[i, j])).ToArray();
        var std = Enumerable.Range(0, d).Select(j => Math.Sqrt(Enumerable.Range(0, n).Sum(i => Math.Pow(rows[i, j] - mean[j], 2)) / (n - 1))).ToArray();
        return (mean, std);
    }
}
