using Flows.CSharp;
using Flows.Plotting;
using ScottPlot;

namespace Flows.Cli;

/// <summary>PNG pictures of a model and of its fit: the density itself in 2-D, pairwise marginals of
/// samples above that, and the loss curve of a training run. Every file is written atomically.</summary>
internal static class Plotting
{
    private const int Samples = 20_000;

    /// <summary>Writes the picture of <paramref name="model"/> to <paramref name="path"/>; <paramref name="columns"/>
    /// (0-based, at most <see cref="PairwiseMarginals.maxColumns"/>) picks the columns of a pairwise plot,
    /// null the first ones. Returns what it shows, in words.</summary>
    public static string Write(DensityModel model, string path, int resolution, int[]? columns)
    {
        var samples = model.Sample(Samples, seed: 1);
        // the training data's column names where the model kept them
        var names = model.ColumnNames.Count == model.Dimension ? model.ColumnNames.ToArray() : Enumerable.Range(1, model.Dimension).Select(j => $"x{j}").ToArray();
        var (figure, what) = model.Dimension switch
        {
            1 => (Single(Histogram(Column(samples, 0), names[0])), "histogram of samples"),
            2 => (Single(Labelled(Density(model, WindowModule.around(Column(samples, 0), Column(samples, 1)), resolution), names)), "density on the samples' range"),
            _ => Pairwise(samples, names, columns ?? PairwiseMarginals.firstColumns(model.Dimension)),
        };
        Save(path, figure);
        return what;
    }

    /// <summary>The density of a 2-D model on a window, as a heat map with axes and a colour bar.</summary>
    public static Plot Density(DensityModel model, Window window, int n, string title = "density of the model")
    {
        var points = Grid.points(n, window).toArray64();
        var grid = new float[n * n, 2];
        for (int k = 0; k < n * n; k++) { grid[k, 0] = (float)points[2 * k]; grid[k, 1] = (float)points[2 * k + 1]; }
        return Panel.heatMap(title, window, n, model.LogProb(grid).Select(v => Math.Exp(v)).ToArray());
    }

    /// <summary>A scatter plot of the first two columns of <paramref name="rows"/>.</summary>
    public static Plot Scatter(string title, Window window, float[,] rows) => Panel.scatter(title, window, Column(rows, 0), Column(rows, 1));

    /// <summary>Writes the training loss of <paramref name="report"/> (and its validation loss, when the fit
    /// held rows out) as a loss curve; <paramref name="units"/> says what the loss is.</summary>
    public static void WriteLossCurve(FitReport report, string path, string units = "NLL, nats per row of your data")
    {
        var validation = report.ValidationLosses.Select(v => Tuple.Create(v.Step, v.Loss)).ToArray();
        var title = validation.Length > 0 ? $"training and validation loss ({units})" : $"training loss ({units})";
        Save(path, Single(LossCurve.panel(title, report.Losses.ToArray(), validation), 900, 450));
    }

    /// <summary>Panels side by side under a title.</summary>
    public static Figure Row(string title, params Plot[] panels) => FigureModule.row(title, 560, 500, panels);

    /// <summary>Writes <paramref name="figure"/> as a PNG through a temporary file.</summary>
    public static void Save(string path, Figure figure)
    {
        var bytes = FigureModule.png(figure);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    private static Figure Single(Plot panel, int width = 620, int height = 520) => FigureModule.row("", width, height, [panel]);

    private static Plot Histogram(double[] x, string name)
    {
        var (low, high) = WindowModule.range(x);
        return Panel.histogram($"{x.Length:N0} samples of the model", name, low, high, 60, x);
    }

    private static Plot Labelled(Plot plot, string[] names)
    {
        plot.XLabel(names[0]);
        plot.YLabel(names[1]);
        return plot;
    }

    private static (Figure, string) Pairwise(float[,] samples, string[] names, int[] columns)
    {
        int n = samples.GetLength(0), d = samples.GetLength(1);
        var rows = new double[n][];
        for (int i = 0; i < n; i++)
        {
            rows[i] = new double[d];
            for (int j = 0; j < d; j++) rows[i][j] = samples[i, j];
        }
        var shown = columns.Length == d ? "all columns" : $"columns {string.Join(", ", columns.Select(j => names[j]))} of {d}";
        return (PairwiseMarginals.figure(names, columns, rows), $"pairwise marginals of {Samples:N0} samples, columns standardised: {shown}");
    }

    private static double[] Column(float[,] rows, int j) =>
        Enumerable.Range(0, rows.GetLength(0)).Select(i => (double)rows[i, j]).ToArray();
}
