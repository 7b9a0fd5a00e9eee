using System.Globalization;
using Flows.CSharp;
using Spectre.Console;

namespace Flows.Cli;

/// <summary>What 'flows train' was asked to do.</summary>
internal sealed record TrainRequest(
    string Data, string? Context, string Flow, int Layers, int Hidden, int Steps, int BatchSize,
    double LearningRate, double Validation, ulong Seed, string Device, string Out);

/// <summary>The commands' work, on the C# façade: read CSVs, call the model, write CSVs and models.</summary>
internal static class Work
{
    public static int Train(TextWriter output, TrainRequest request)
    {
        if (request.Layers < 1) throw new BadInputException($"--layers must be at least 1, got {request.Layers}");
        if (request.Hidden < 1) throw new BadInputException($"--hidden must be at least 1, got {request.Hidden}");
        if (request.Steps < 1) throw new BadInputException($"--steps must be at least 1, got {request.Steps}");
        if (request.BatchSize < 1) throw new BadInputException($"--batch-size must be at least 1, got {request.BatchSize}");
        if (!(request.LearningRate > 0)) throw new BadInputException($"--learning-rate must be above 0, got {request.LearningRate}");
        if (!(request.Validation >= 0 && request.Validation < 1)) throw new BadInputException($"--validation must be in [0, 1), got {request.Validation}");
        var data = CsvTable.Read(request.Data);
        var context = request.Context is null ? null : MatchingContext(CsvTable.Read(request.Context), request.Context, data.Rows);
        var model = DeviceFor(request.Device, FlowKinds.Create(request.Flow, data.Columns, request.Layers, request.Hidden, context?.Columns ?? 0, request.Seed));
        var options = new FitOptions(
            Steps: request.Steps, BatchSize: request.BatchSize, LearningRate: request.LearningRate,
            ValidationFraction: request.Validation, Patience: request.Validation > 0 ? 5 : null,
            ValidateEvery: Math.Max(1, request.Steps / 20), ReportEvery: Math.Max(1, request.Steps / 100), Seed: request.Seed);
        output.WriteLine($"training {request.Flow} ({model.ParameterCount:N0} parameters) on {data.Rows:N0} rows × {data.Columns} columns of {request.Data}, on {model.Device}");
        var fitted = WithProgress(output, request.Steps, progress =>
            context is null
                ? model.Fit(Floats(data.Values), options, progress)
                : model.Fit(Floats(data.Values), Floats(context.Values), options, progress));
        var report = fitted.LastFit!;
        if (report.Diverged)
            throw new InvalidOperationException($"training diverged: {report.Message}; nothing written to {request.Out}");
        fitted.Save(request.Out);
        var table = new Table().AddColumns("figure", "value");
        table.AddRow("steps", report.StepsRun.ToString(CultureInfo.InvariantCulture));
        table.AddRow("final training loss (nats, standardised columns)", report.FinalLoss.ToString("F4", CultureInfo.InvariantCulture));
        if (report.BestValidationLoss is double v) table.AddRow("best validation NLL (nats, standardised columns)", v.ToString("F4", CultureInfo.InvariantCulture));
        table.AddRow("seconds", report.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture));
        table.AddRow("model", request.Out);
        Console(output).Write(table);
        return ExitCodes.Ok;
    }

    public static int LogProb(TextWriter output, string modelPath, string dataPath, string? contextPath, string outPath)
    {
        var model = Load(modelPath);
        var data = CsvTable.Read(dataPath);
        CheckColumns(data, dataPath, model.Dimension, "data");
        var context = ContextFor(model, contextPath, data.Rows);
        var scores = model.LogProb(Floats(data.Values), context is null ? null : Floats(context.Values));
        var column = new double[scores.Length, 1];
        for (int i = 0; i < scores.Length; i++) column[i, 0] = scores[i];
        new CsvTable(["log_prob"], column).Write(outPath);
        output.WriteLine($"wrote {scores.Length:N0} log-densities (nats) to {outPath}; mean {scores.Average():F4}");
        return ExitCodes.Ok;
    }

    public static int Sample(TextWriter output, string modelPath, int count, string? contextPath, ulong seed, string outPath)
    {
        if (count < 1) throw new BadInputException($"--count must be at least 1, got {count}");
        var model = Load(modelPath);
        float[,] rows;
        if (model.ContextDimension > 0)
        {
            if (contextPath is null) throw new BadInputException($"{modelPath} is a conditional model: give --context with one context row");
            var context = CsvTable.Read(contextPath);
            CheckColumns(context, contextPath, model.ContextDimension, "context");
            if (context.Rows != 1 && context.Rows != count)
                throw new BadInputException($"{contextPath}: expected 1 context row (used for every sample) or {count}, got {context.Rows}");
            rows = model.Sample(Floats(Repeat(context.Values, count)), seed);
        }
        else
        {
            if (contextPath is not null) throw new BadInputException($"{modelPath} is not conditional: drop --context");
            rows = model.Sample(count, seed);
        }
        new CsvTable(null, Doubles(rows)).Write(outPath);
        output.WriteLine($"wrote {count:N0} samples to {outPath}");
        return ExitCodes.Ok;
    }

    public static int Plot(TextWriter output, string modelPath, string outPath, int resolution)
    {
        if (resolution < 16 || resolution > 2000) throw new BadInputException($"--resolution must be in [16, 2000], got {resolution}");
        var model = Load(modelPath);
        if (model.ContextDimension > 0) throw new BadInputException($"{modelPath} is a conditional model; 'flows plot' draws unconditional models");
        var what = Plotting.Write(model, outPath, resolution);
        output.WriteLine($"wrote {outPath} ({what})");
        return ExitCodes.Ok;
    }

    private static DensityModel Load(string path)
    {
        if (!Directory.Exists(path)) throw new BadInputException($"{path}: no such model directory");
        try { return DensityModel.Load(path); }
        catch (InvalidDataException e) { throw new BadInputException($"{path}: {e.Message}"); }
    }

    private static CsvTable? ContextFor(DensityModel model, string? contextPath, int rows)
    {
        if (model.ContextDimension == 0)
            return contextPath is null ? null : throw new BadInputException("the model is not conditional: drop --context");
        if (contextPath is null) throw new BadInputException($"the model is conditional on {model.ContextDimension} columns: give --context");
        var context = MatchingContext(CsvTable.Read(contextPath), contextPath, rows);
        CheckColumns(context, contextPath, model.ContextDimension, "context");
        return context;
    }

    private static CsvTable MatchingContext(CsvTable context, string path, int rows) =>
        context.Rows == rows ? context : throw new BadInputException($"{path}: has {context.Rows} rows, the data has {rows}; one context row per data row");

    private static void CheckColumns(CsvTable table, string path, int expected, string what)
    {
        if (table.Columns != expected)
            throw new BadInputException($"{path}: has {table.Columns} columns, the model's {what} has {expected}");
    }

    private static T WithProgress<T>(TextWriter output, int steps, Func<IProgress<TrainingProgress>, T> run)
    {
        if (!ReferenceEquals(output, System.Console.Out) || System.Console.IsOutputRedirected)
        {
            // Plain lines: logs and tests read them; a live bar would be noise there.
            var every = Math.Max(1, steps / 10);
            var lastShown = 0;
            return run(new Reporter(p =>
            {
                if (p.Step - lastShown < every && p.Step < p.TotalSteps) return;
                lastShown = p.Step;
                var validation = p.ValidationLoss is double v ? $"  validation {v:F4}" : "";
                output.WriteLine($"step {p.Step,6}/{p.TotalSteps}  loss {p.Loss:F4}{validation}");
            }));
        }
        T result = default!;
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask("training", maxValue: steps);
            result = run(new Reporter(p =>
            {
                task.Value = p.Step;
                task.Description = $"loss {p.Loss:F3}";
            }));
            task.Value = steps;
        });
        return result;
    }

    /// <summary>Progress delivered on the training thread (Progress&lt;T&gt; would post it elsewhere).</summary>
    private sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private static IAnsiConsole Console(TextWriter output) =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });

    private static float[,] Floats(double[,] values)
    {
        var result = new float[values.GetLength(0), values.GetLength(1)];
        for (int i = 0; i < values.GetLength(0); i++)
            for (int j = 0; j < values.GetLength(1); j++)
                result[i, j] = (float)values[i, j];
        return result;
    }

    private static double[,] Doubles(float[,] values)
    {
        var result = new double[values.GetLength(0), values.GetLength(1)];
        for (int i = 0; i < values.GetLength(0); i++)
            for (int j = 0; j < values.GetLength(1); j++)
                result[i, j] = values[i, j];
        return result;
    }

    private static double[,] Repeat(double[,] rows, int count)
    {
        if (rows.GetLength(0) == count) return rows;
        var result = new double[count, rows.GetLength(1)];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < rows.GetLength(1); j++)
                result[i, j] = rows[0, j];
        return result;
    }

    // The model on the requested device; a name that is not a device is bad input (exit code 2).
    private static DensityModel DeviceFor(string device, DensityModel model)
    {
        try
        {
            return model.To(device);
        }
        catch (ArgumentException e)
        {
            throw new BadInputException($"--device: {e.Message.Split(" (Parameter")[0]}");
        }
    }
}
