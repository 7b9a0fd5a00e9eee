namespace Flows.Facade.Tests;

/// <summary>Test data with known densities, drawn with System.Random (independent of the library).</summary>
internal static class Data
{
    /// <summary>Rows of N(mean, Σ) with Σ = [[s0², ρ s0 s1], [ρ s0 s1, s1²]], by a Cholesky factor.</summary>
    public static float[,] Gaussian2(int n, int seed, double m0 = 3, double m1 = -1, double s0 = 2, double s1 = 0.5, double rho = 0.8)
    {
        var random = new Random(seed);
        var rows = new float[n, 2];
        for (int i = 0; i < n; i++)
        {
            double a = Normal(random), b = Normal(random);
            rows[i, 0] = (float)(m0 + s0 * a);
            rows[i, 1] = (float)(m1 + s1 * (rho * a + Math.Sqrt(1 - rho * rho) * b));
        }
        return rows;
    }

    /// <summary>The exact log-density of <see cref="Gaussian2"/> at (x, y).</summary>
    public static double Gaussian2LogDensity(double x, double y, double m0 = 3, double m1 = -1, double s0 = 2, double s1 = 0.5, double rho = 0.8)
    {
        double u = (x - m0) / s0, v = (y - m1) / s1, q = (u * u - 2 * rho * u * v + v * v) / (1 - rho * rho);
        return -0.5 * q - Math.Log(2 * Math.PI * s0 * s1 * Math.Sqrt(1 - rho * rho));
    }

    /// <summary>Rows x | c ~ N(2c, 0.5²) with contexts c ~ N(0, 1): a conditional density known exactly.</summary>
    public static float[,] LinearGaussian(int n, Random random, out float[,] context)
    {
        context = new float[n, 1];
        var x = new float[n, 1];
        for (int i = 0; i < n; i++)
        {
            context[i, 0] = (float)Normal(random);
            x[i, 0] = (float)(2 * context[i, 0] + 0.5 * Normal(random));
        }
        return x;
    }

    /// <summary>The mean exact log-density of <see cref="LinearGaussian"/> rows given their contexts.</summary>
    public static double LinearGaussianMeanLogDensity(float[,] x, float[,] context) =>
        Enumerable.Range(0, x.GetLength(0)).Average(i =>
        {
            double u = (x[i, 0] - 2 * context[i, 0]) / 0.5;
            return -0.5 * u * u - Math.Log(0.5 * Math.Sqrt(2 * Math.PI));
        });

    /// <summary>A standard normal draw (Box–Muller).</summary>
    public static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>A directory name under the temporary folder that does not exist yet.</summary>
    public static string TemporaryDirectory() => Path.Combine(Path.GetTempPath(), $"flows-facade-{Guid.NewGuid():N}");

    /// <summary>A model manifest with its seal recomputed after an edit: the SHA-256 of the text with the
    /// seal's 64 digits as zeros.</summary>
    public static string Sealed(string manifest)
    {
        var field = new System.Text.RegularExpressions.Regex("\"manifestSha256\": \"[0-9a-f]{64}\"");
        var zeroed = field.Replace(manifest, $"\"manifestSha256\": \"{new string('0', 64)}\"");
        var sum = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(zeroed)));
        return field.Replace(zeroed, $"\"manifestSha256\": \"{sum}\"");
    }
}
