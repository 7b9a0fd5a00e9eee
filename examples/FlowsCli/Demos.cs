using System.Globalization;
using Flows.CSharp;
using Flows.Datasets;
using Flows.Plotting;
using Flows.Tensors;

namespace Flows.Cli;

/// <summary>'flows demo NAME': the worked examples, run through the façade as a user would.</summary>
internal static class Demos
{
    private sealed record Demo(string Description, int DefaultSteps, Func<TextWriter, int, string, int> Run);

    private static readonly Dictionary<string, Demo> All = new()
    {
        ["two-moons"] = new("RQ-NSF fitted to samples of the two-moons density (entropy 1.571 nats)", 3000,
            (o, steps, png) => FitData(o, "two-moons", Toy.twoMoons, DensityModel.CreateNeuralSpline(2, layers: 4, hidden: 64, bins: 8, bound: 4.0, seed: 1), steps, png)),
        ["eight-gaussians"] = new("RQ-NSF fitted to eight Gaussians on a circle", 3000,
            (o, steps, png) => FitData(o, "eight-gaussians", Toy.eightGaussians, DensityModel.CreateNeuralSpline(2, layers: 4, hidden: 64, seed: 1), steps, png)),
        ["checkerboard"] = new("RQ-NSF fitted to the checkerboard", 3000,
            (o, steps, png) => FitData(o, "checkerboard", Toy.checkerboard, DensityModel.CreateNeuralSpline(2, layers: 6, hidden: 64, seed: 1), steps, png)),
        ["hexagon"] = new("a CNF (FFJORD, exact trace) fitted to six Gaussians on a hexagon", 300,
            (o, steps, png) => FitData(o, "hexagon", Toy.hexagon, DensityModel.CreateCnf(2, blocks: 1, hidden: 32, seed: 1), steps, png)),
        ["planar"] = new("16 planar layers fitted by reverse KL to the two-mode ring", 4000,
            (o, steps, png) => FitTarget(o, TargetDensity.TwoModeRing, DensityModel.CreatePlanar(2, layers: 16, seed: 1), steps, png)),
    };

    /// <summary>The demo names.</summary>
    public static string[] Names => All.Keys.ToArray();

    public static int Run(TextWriter output, string name, int steps, string png)
    {
        var demo = All[name];
        if (steps < 0) throw new BadInputException($"--steps must be positive, got {steps}");
        output.WriteLine($"{name}: {demo.Description}");
        var path = png.Length == 0 ? $"{name}.png" : png;
        OutputPaths.CheckFile(path);
        return demo.Run(output, steps == 0 ? demo.DefaultSteps : steps, path);
    }

    private static int FitData(TextWriter output, string name, Func<Generator, int, Dtype, Tensor> draw, DensityModel model, int steps, string png)
    {
        var train = Rows(draw(new Generator(7), 50_000, Dtype.Float32));
        var heldOut = Rows(draw(new Generator(2024), 20_000, Dtype.Float32));
        var options = new FitOptions(Steps: steps, BatchSize: 512, LearningRate: 1e-3, Seed: 7);
        var fitted = Timed(output, () => model.Fit(train, options));
        var nll = -fitted.LogProb(heldOut).Average();
        output.WriteLine($"{name}.heldout_nll {nll.ToString("F4", CultureInfo.InvariantCulture)} nats");
        var window = WindowModule.square(4.5);
        Plotting.Save(png, Plotting.Row($"{name}: {fitted.LastFit!.StepsRun} steps, held-out NLL {nll.ToString("F3", CultureInfo.InvariantCulture)} nats",
            Plotting.Scatter("5,000 held-out data points", window, First(heldOut, 5000)), Plotting.Density(fitted, window, 200, "learned density")));
        output.WriteLine($"wrote {png} (held-out data | learned density on [-4.5, 4.5]^2)");
        WriteLossCurve(output, fitted, png, "NLL, nats per sample");
        return ExitCodes.Ok;
    }

    private static int FitTarget(TextWriter output, TargetDensity target, DensityModel model, int steps, string png)
    {
        var options = new FitOptions(Steps: steps, BatchSize: 256, LearningRate: 1e-3, Seed: 7);
        var fitted = Timed(output, () => model.FitToDensity(target, options));
        output.WriteLine($"planar.reverse_kl {fitted.LastFit!.FinalLoss.ToString("F4", CultureInfo.InvariantCulture)} nats (up to log Z)");
        var window = WindowModule.square(5.0);
        Plotting.Save(png, Plotting.Row($"planar flow by reverse KL, {fitted.LastFit!.StepsRun} steps",
            Plotting.Scatter("5,000 samples of the flow", window, fitted.Sample(5000, seed: 3)), Plotting.Density(fitted, window, 200, "learned density")));
        output.WriteLine($"wrote {png} (samples | learned density on [-5, 5]^2)");
        WriteLossCurve(output, fitted, png, "reverse KL minus log Z, nats");
        return ExitCodes.Ok;
    }

    private static DensityModel Timed(TextWriter output, Func<DensityModel> fit)
    {
        var fitted = fit();
        var report = fitted.LastFit!;
        if (report.Diverged) throw new InvalidOperationException($"training diverged: {report.Message}");
        output.WriteLine($"trained {report.StepsRun} steps in {report.Elapsed.TotalSeconds:F1} s; final loss {report.FinalLoss:F4}");
        return fitted;
    }

    private static void WriteLossCurve(TextWriter output, DensityModel fitted, string png, string units)
    {
        var path = LossCurve.pathBeside(png);
        Plotting.WriteLossCurve(fitted.LastFit!, path, units);
        output.WriteLine($"wrote {path} (loss curve)");
    }

    private static float[,] First(float[,] rows, int count)
    {
        var first = new float[Math.Min(count, rows.GetLength(0)), rows.GetLength(1)];
        Buffer.BlockCopy(rows, 0, first, 0, first.Length * sizeof(float));
        return first;
    }

    private static float[,] Rows(Tensor t)
    {
        var flat = t.toArray32();
        int n = t.shape[0], d = t.shape[1];
        var rows = new float[n, d];
        Buffer.BlockCopy(flat, 0, rows, 0, flat.Length * sizeof(float));
        return rows;
    }
}
