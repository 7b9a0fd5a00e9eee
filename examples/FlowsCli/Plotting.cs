using Flows.CSharp;
using Flows.Plot;
using Microsoft.FSharp.Collections;

namespace Flows.Cli;

/// <summary>PNG pictures of a model: the density itself in 2-D, pairwise marginals of samples above that.</summary>
internal static class Plotting
{
    private const int Samples = 20_000;

    /// <summary>Writes the picture to <paramref name="path"/> atomically; returns what it shows, in words.</summary>
    public static string Write(DensityModel model, string path, int resolution)
    {
        var samples = model.Sample(Samples, seed: 1);
        var (image, what) = model.Dimension switch
        {
            1 => (Histogram(Column(samples, 0), resolution), "histogram of samples"),
            2 => (Density(model, samples, resolution), "density on the samples' range"),
            _ => (PairwiseMarginals(samples, Math.Max(64, resolution / 2)), $"pairwise marginals of {Samples:N0} samples, columns standardised"),
        };
        AtomicFile.Write(path, stream => stream.Write(Png.encode(image)));
        return what;
    }

    private static Image Density(DensityModel model, float[,] samples, int n) =>
        DensityOn(model, Window(Column(samples, 0)), Window(Column(samples, 1)), n);

    /// <summary>The density of a 2-D model on the square [−bound, bound]², n × n pixels.</summary>
    public static Image DensityOn(DensityModel model, double bound, int n) => DensityOn(model, (-bound, bound), (-bound, bound), n);

    private static Image DensityOn(DensityModel model, (double Low, double High) x, (double Low, double High) y, int n)
    {
        var grid = new float[n * n, 2];
        for (int row = 0; row < n; row++)
            for (int col = 0; col < n; col++)
            {
                grid[row * n + col, 0] = (float)(x.Low + (x.High - x.Low) * col / (n - 1));
                grid[row * n + col, 1] = (float)(y.Low + (y.High - y.Low) * row / (n - 1));
            }
        return Figure.heatMap(n, model.LogProb(grid).Select(v => Math.Exp(v)).ToArray());
    }

    private static Image PairwiseMarginals(float[,] samples, int n)
    {
        int d = samples.GetLength(1);
        var columns = Enumerable.Range(0, d).Select(j => Standardised(Column(samples, j))).ToArray();
        var rows = new List<Image>();
        for (int i = 0; i < d; i++)
        {
            var panels = new List<Image>();
            for (int j = 0; j < d; j++)
                panels.Add(i == j ? Histogram(columns[i], n) : Scatter(columns[j], columns[i], n));
            rows.Add(Figure.beside(ListModule.OfSeq(panels)));
        }
        return Figure.above(ListModule.OfSeq(rows));
    }

    private static Image Scatter(double[] x, double[] y, int n)
    {
        var points = new double[2 * x.Length];
        for (int k = 0; k < x.Length; k++) { points[2 * k] = x[k]; points[2 * k + 1] = y[k]; }
        return Figure.histogram(n, 3.5, points);
    }

    /// <summary>A 1-D histogram drawn as bars (a 2-D histogram whose y is spread over the bar height).</summary>
    private static Image Histogram(double[] x, int n)
    {
        var (lo, hi) = Window(x);
        var counts = new double[n];
        foreach (var v in x)
        {
            int bin = (int)((v - lo) / (hi - lo) * n);
            if (bin >= 0 && bin < n) counts[bin]++;
        }
        var top = counts.Max();
        var values = new double[n * n];
        for (int col = 0; col < n; col++)
            for (int row = 0; row < (int)(counts[col] / top * (n - 1)); row++)
                values[row * n + col] = 1.0;
        return Figure.heatMap(n, values);
    }

    private static double[] Column(float[,] rows, int j) =>
        Enumerable.Range(0, rows.GetLength(0)).Select(i => (double)rows[i, j]).ToArray();

    private static double[] Standardised(double[] x)
    {
        var mean = x.Average();
        var scale = Math.Sqrt(x.Select(v => (v - mean) * (v - mean)).Average());
        return x.Select(v => (v - mean) / (scale > 0 ? scale : 1.0)).ToArray();
    }

    /// <summary>The central 99.5% of the values, widened by 15% on each side.</summary>
    private static (double Low, double High) Window(double[] x)
    {
        var sorted = x.OrderBy(v => v).ToArray();
        double lo = sorted[(int)(0.0025 * (sorted.Length - 1))], hi = sorted[(int)(0.9975 * (sorted.Length - 1))];
        var margin = Math.Max(0.15 * (hi - lo), 1e-3);
        return (lo - margin, hi + margin);
    }
}
