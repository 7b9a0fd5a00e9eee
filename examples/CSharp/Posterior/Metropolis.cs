namespace Flows.Examples.Posterior;

/// <summary>Posterior means, standard deviations and covariance from a Markov chain.</summary>
/// <param name="Mean">Mean of each coordinate.</param>
/// <param name="Std">Standard deviation of each coordinate.</param>
/// <param name="Covariance">Covariance matrix of the draws.</param>
/// <param name="Acceptance">Share of proposals accepted after the burn-in.</param>
internal sealed record ChainSummary(double[] Mean, double[] Std, double[,] Covariance, double Acceptance);

/// <summary>Random-walk Metropolis with an isotropic Gaussian proposal whose scale is tuned during the burn-in
/// towards the acceptance rate 0.3; the reference the flow is checked against.</summary>
internal static class Metropolis
{
    public static ChainSummary Run(Func<double[], double> logDensity, int dimension, int iterations, int burnIn, Random random)
    {
        var x = new double[dimension];
        var proposal = new double[dimension];
        double current = logDensity(x), scale = 0.1;
        var sum = new double[dimension];
        var products = new double[dimension, dimension];
        int accepted = 0, tuningAccepted = 0;
        for (int step = 0; step < burnIn + iterations; step++)
        {
            for (int j = 0; j < dimension; j++) proposal[j] = x[j] + scale * Gaussian(random);
            double candidate = logDensity(proposal);
            bool accept = Math.Log(1 - random.NextDouble()) < candidate - current;
            if (accept)
            {
                (x, proposal) = (proposal, x);
                current = candidate;
            }
            if (step < burnIn)
            {
                tuningAccepted += accept ? 1 : 0;
                // every 500 steps: widen the proposal when too many are accepted, narrow it when too few
                if ((step + 1) % 500 == 0)
                {
                    scale *= Math.Exp(tuningAccepted / 500.0 - 0.3);
                    tuningAccepted = 0;
                }
                continue;
            }
            accepted += accept ? 1 : 0;
            for (int j = 0; j < dimension; j++)
            {
                sum[j] += x[j];
                for (int k = 0; k < dimension; k++) products[j, k] += x[j] * x[k];
            }
        }
        var mean = sum.Select(s => s / iterations).ToArray();
        var covariance = new double[dimension, dimension];
        for (int j = 0; j < dimension; j++)
            for (int k = 0; k < dimension; k++) covariance[j, k] = products[j, k] / iterations - mean[j] * mean[k];
        var std = Enumerable.Range(0, dimension).Select(j => Math.Sqrt(covariance[j, j])).ToArray();
        return new ChainSummary(mean, std, covariance, accepted / (double)iterations);
    }

    /// <summary>A standard normal draw (Box–Muller).</summary>
    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
