namespace Flows.Examples.Posterior;

/// <summary>log Z by importance sampling from a Gaussian N(m, 2C) with the chain's mean m and covariance C: an
/// estimate that shares nothing with the flow.</summary>
internal static class GaussianEvidence
{
    /// <summary>log Z and its delta-method standard error from <paramref name="draws"/> Gaussian draws.</summary>
    public static (double LogZ, double StandardError) Estimate(Func<double[], double> logDensity, ChainSummary chain, int draws, Random random)
    {
        int d = chain.Mean.Length;
        var lower = Cholesky(chain.Covariance, inflation: 2.0);
        double logDeterminant = 2 * Enumerable.Range(0, d).Sum(j => Math.Log(lower[j, j]));
        var logW = new double[draws];
        var u = new double[d];
        var x = new double[d];
        for (int n = 0; n < draws; n++)
        {
            for (int j = 0; j < d; j++) u[j] = Metropolis.Gaussian(random);
            for (int j = 0; j < d; j++)
            {
                x[j] = chain.Mean[j];
                for (int k = 0; k <= j; k++) x[j] += lower[j, k] * u[k];
            }
            double logProposal = -0.5 * u.Sum(v => v * v) - 0.5 * logDeterminant - 0.5 * d * Math.Log(2 * Math.PI);
            logW[n] = logDensity(x) - logProposal;
        }
        double top = logW.Max();
        var w = logW.Select(l => Math.Exp(l - top)).ToArray();
        double mean = w.Average();
        double std = Math.Sqrt(w.Sum(v => (v - mean) * (v - mean)) / (draws - 1));
        return (top + Math.Log(mean), std / (mean * Math.Sqrt(draws)));
    }

    // the lower Cholesky factor of inflation × covariance
    private static double[,] Cholesky(double[,] covariance, double inflation)
    {
        int d = covariance.GetLength(0);
        var lower = new double[d, d];
        for (int j = 0; j < d; j++)
            for (int k = 0; k <= j; k++)
            {
                double s = inflation * covariance[j, k];
                for (int m = 0; m < k; m++) s -= lower[j, m] * lower[k, m];
                lower[j, k] = j == k ? Math.Sqrt(s) : s / lower[k, k];
            }
        return lower;
    }
}
