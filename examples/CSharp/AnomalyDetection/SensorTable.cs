namespace Flows.Examples.AnomalyDetection;

/// <summary>A generated table of four sensor readings that depend on each other non-linearly, and anomalies that
/// break one of those dependencies while each reading alone stays in its normal range.</summary>
internal static class SensorTable
{
    /// <summary>Columns of a row.</summary>
    public const int Columns = 4;

    /// <summary><paramref name="count"/> normal rows: a ~ N(0, 1); b = a²/2 + 0.3 ε (a banana); c = 0.8 a − 0.4 b +
    /// Laplace(0.3) (heavy tails); d = exp(0.4 a + 0.25 ε) (skewed, positive).</summary>
    public static double[,] Normal(int count, Random random)
    {
        var rows = new double[count, Columns];
        for (int i = 0; i < count; i++) Fill(rows, i, random);
        return rows;
    }

    /// <summary><paramref name="normal"/> normal rows followed by <paramref name="anomalies"/> anomalies, with a
    /// label per row (true: anomaly). An anomaly is a normal row with one of b, c, log d moved by eight to ten
    /// times its noise, so that it breaks that column's relation to a.</summary>
    public static (double[,] Rows, bool[] IsAnomaly) WithAnomalies(int normal, int anomalies, Random random)
    {
        var rows = new double[normal + anomalies, Columns];
        var labels = new bool[normal + anomalies];
        for (int i = 0; i < rows.GetLength(0); i++)
        {
            Fill(rows, i, random);
            if (i < normal) continue;
            labels[i] = true;
            double sign = random.Next(2) == 0 ? -1 : 1;
            switch (random.Next(3))
            {
                case 0: rows[i, 1] += sign * 2.4; break;            // 8 × b's noise 0.3
                case 1: rows[i, 2] += sign * 3.0; break;            // 10 Laplace scales of 0.3
                default: rows[i, 3] *= Math.Exp(sign * 2.0); break; // 8 × log d's noise 0.25
            }
        }
        return (rows, labels);
    }

    /// <summary>The exact log-density of normal rows at row <paramref name="i"/> of <paramref name="rows"/>, nats:
    /// the detector a perfect model would be.</summary>
    public static double LogDensity(double[,] rows, int i)
    {
        double a = rows[i, 0], b = rows[i, 1], c = rows[i, 2], d = rows[i, 3];
        if (d <= 0) return double.NegativeInfinity;
        return LogNormal(a, 0, 1) + LogNormal(b, 0.5 * a * a, 0.3)
            - Math.Abs(c - (0.8 * a - 0.4 * b)) / 0.3 - Math.Log(2 * 0.3)
            + LogNormal(Math.Log(d), 0.4 * a, 0.25) - Math.Log(d);
    }

    private static double LogNormal(double x, double mean, double std) =>
        -0.5 * Math.Pow((x - mean) / std, 2) - Math.Log(std * Math.Sqrt(2 * Math.PI));

    private static void Fill(double[,] rows, int i, Random random)
    {
        double a = Gaussian(random);
        double b = 0.5 * a * a + 0.3 * Gaussian(random);
        double u = random.NextDouble() - 0.5;
        double laplace = -0.3 * Math.Sign(u) * Math.Log(1 - 2 * Math.Abs(u));
        rows[i, 0] = a;
        rows[i, 1] = b;
        rows[i, 2] = 0.8 * a - 0.4 * b + laplace;
        rows[i, 3] = Math.Exp(0.4 * a + 0.25 * Gaussian(random));
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
