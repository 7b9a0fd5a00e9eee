using System.Globalization;
using Flows.CSharp;
using Spectre.Console;

namespace Flows.Cli;

/// <summary>What 'flows train' was asked to do.</summary>
internal sealed record TrainRequest(
    string Data, string? Context, string Flow, int? Layers, int? Hidden, int? Steps, int? BatchSize,
    double LearningRate, double? Validation, ulong Seed, string Device, string Out, HeaderMode Header = HeaderMode.Auto, bool Force = false,
    string? PlotLoss = null);

/// <summary>What 'flows logprob' was asked to do.</summary>
internal sealed record LogProbRequest(string Model, string Data, string? Context, string Out, HeaderMode Header = HeaderMode.Auto);

/// <summary>What 'flows sample' was asked to do.</summary>
internal sealed record SampleRequest(string Model, int Count, string? Context, ulong Seed, string Out, HeaderMode Header = HeaderMode.Auto);

/// <summary>The commands' work, on the C# façade: read CSVs, call the model, write CSVs and models.</summary>
internal static class Work
{
    public static int Train(TextWriter output, TextWriter error, TrainRequest request, CancellationToken cancel)
    {
        if (request.Layers < 1) throw new BadInputException($"--layers must be at least 1, got {request.Layers}");
        if (request.Hidden < 1) throw new BadInputException($"--hidden must be at least 1, got {request.Hidden}");
        if (request.Steps < 1) throw new BadInputException($"--steps must be at least 1, got {request.Steps}");
        if (request.BatchSize < 1) throw new BadInputException($"--batch-size must be at least 1, got {request.BatchSize}");
        if (!(request.LearningRate > 0)) throw new BadInputException($"--learning-rate must be above 0, got {request.LearningRate}");
        if (request.Validation is double v && !(v >= 0 && v < 1)) throw new BadInputException($"--validation must be in [0, 1), got {request.Validation}");
        OutputPaths.CheckModelFolder(request.Out, request.Force);
        if (MpiWorld.Launched)
            return DistributedTraining.Train(output, error, request,
                (rows, columns, contextColumns, flow) => FlowKinds.Create(flow, rows, columns, request.Layers, request.Hidden, contextColumns, request.Seed),
                model => DeviceFor(request.Device, model), WriteSummary, (writer, steps, run) => WithProgress(writer, steps, run), cancel);
        if (request.PlotLoss is not null) OutputPaths.CheckFile(request.PlotLoss);
        var data = CsvTable.Read(request.Data, request.Header);
        var context = request.Context is null ? null : MatchingContext(CsvTable.Read(request.Context, request.Header), request.Context, data.Rows);
        cancel.ThrowIfCancellationRequested();
        var model = DeviceFor(request.Device, FlowKinds.Create(request.Flow, data.Rows, data.Columns, request.Layers, request.Hidden, context?.Columns ?? 0, request.Seed));
        // saved with the model, so that 'flows sample' writes the same header
        if (data.Header is not null) model = model.WithColumnNames(data.Header);
        var options = FitOptionsFor(request);
        output.WriteLine($"training {request.Flow} ({model.ParameterCount:N0} parameters) on {data.Rows:N0} rows × {data.Columns} columns of {request.Data}, on {model.Device}");
        DensityModel fitted;
        try
        {
            // doubles all the way: the façade standardises in float64 before rounding to the model's float32
            fitted = WithProgress(output, request.Steps ?? 10_000, progress =>
                context is null
                    ? model.Fit(data.Values, options, progress, cancel)
                    : model.Fit(data.Values, context.Values, options, progress, cancel));
        }
        catch (FitCancelledException e)
        {
            var steps = e.LastModel.LastFit?.StepsRun ?? 0;
            if (steps == 0)
            {
                error.WriteLine($"cancelled before the first step; nothing written to {request.Out}");
                return ExitCodes.Cancelled;
            }
            e.LastModel.Save(request.Out);
            error.WriteLine($"cancelled at step {steps}{(request.Steps is int total ? $" of {total}" : "")}: wrote the partial model (the best so far) to {request.Out}");
            return ExitCodes.Cancelled;
        }
        var report = fitted.LastFit!;
        if (report.Diverged)
            throw new InvalidOperationException($"training diverged: {report.Message}; nothing written to {request.Out}");
        fitted.Save(request.Out);
        WriteSummary(output, report, request.Out);
        if (request.PlotLoss is not null)
        {
            Plotting.WriteLossCurve(report, request.PlotLoss);
            output.WriteLine($"wrote the loss curve to {request.PlotLoss}");
        }
        return ExitCodes.Ok;
    }

    // How the CLI's options become the façade's: what is not given is chosen from the table's size.
    private static FitOptions FitOptionsFor(TrainRequest request) => new(
        Steps: request.Steps, BatchSize: request.BatchSize, LearningRate: request.LearningRate,
        ValidationFraction: request.Validation, ReportEvery: Math.Max(1, (request.Steps ?? 2000) / 100), Seed: request.Seed);

    private static void WriteSummary(TextWriter output, FitReport report, string modelPath)
    {
        string F(double v) => v.ToString("F4", CultureInfo.InvariantCulture);
        var why = report.StopReason switch
        {
            FitStop.EarlyStopped => "stopped early: validation stopped improving",
            FitStop.Exploded => "stopped early: validation rose far above its best",
            FitStop.Diverged => "stopped early: diverged (non-finite losses); kept the last finite parameters",
            FitStop.Cancelled => "cancelled",
            _ => "ran every step",
        };
        // a line of its own, outside the table, so that logs and scripts find it whole
        output.WriteLine($"{why}, after {report.StepsRun} steps{(report.BestStep is int best ? $"; kept step {best}" : "")}");
        var table = new Table().AddColumns("figure", "value");
        table.AddRow("model kept", report.Chosen == FittedModel.Flow ? "the flow" : "the Gaussian (the flow was not better on validation beyond noise)");
        table.AddRow("rows trained / held out", $"{report.TrainRows} / {report.ValidationRows}{(report.Refitted ? ", then refitted on all" : "")}");
        if (report.FlowValidationLoss is double f) table.AddRow("validation NLL of the flow (nats per row of your data)", F(f));
        if (report.GaussianValidationLoss is double g) table.AddRow("validation NLL of the Gaussian (nats per row of your data)", F(g));
        table.AddRow("final training loss (nats per row of your data)", F(report.FinalLoss));
        foreach (var warning in report.Warnings) table.AddRow("warning", Markup.Escape(warning));
        table.AddRow("seconds", report.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture));
        table.AddRow("model", Markup.Escape(modelPath));
        Console(output).Write(table);
    }

    /// <summary>Scores the data a chunk at a time, appending to a temporary file renamed into place at the end.</summary>
    public static int LogProb(TextWriter output, LogProbRequest request, CancellationToken cancel)
    {
        OutputPaths.CheckFile(request.Out);
        var model = Load(request.Model);
        using var data = new CsvRowReader(request.Data, request.Header);
        CheckColumns(data.Columns, request.Data, model.Dimension, "data");
        using var context = OpenContext(model, request.Context, request.Header);
        double sum = 0;
        AtomicFile.Write(request.Out, stream =>
        {
            using var writer = new StreamWriter(stream, Utf8, 1 << 16);
            writer.Write("log_prob\n");
            while (data.ReadChunk(Chunking.Rows) is { } chunk)
            {
                cancel.ThrowIfCancellationRequested();
                int rows = chunk.GetLength(0);
                var contextRows = context is null ? null : ContextChunk(context, rows, data.RowsRead - rows, request.Data);
                var scores = model.LogProb(chunk, contextRows);
                foreach (var score in scores)
                {
                    writer.Write(score.ToString("R", CultureInfo.InvariantCulture));
                    writer.Write('\n');
                    sum += score;
                }
            }
            if (context is not null && !context.AtEnd)
                throw new BadInputException($"{context.Path}: has more rows than the {data.RowsRead:N0} of {request.Data}; one context row per data row");
        });
        output.WriteLine($"wrote {data.RowsRead:N0} log-densities (nats) to {request.Out}; mean {sum / data.RowsRead:F4}");
        return ExitCodes.Ok;
    }

    /// <summary>Draws a chunk at a time (chunk k seeded by <see cref="Chunking.Seed"/>), appending to a
    /// temporary file renamed into place at the end.</summary>
    public static int Sample(TextWriter output, SampleRequest request, CancellationToken cancel)
    {
        if (request.Count < 1) throw new BadInputException($"--count must be at least 1, got {request.Count}");
        OutputPaths.CheckFile(request.Out);
        var model = Load(request.Model);
        if (model.ContextDimension == 0 && request.Context is not null)
            throw new BadInputException($"{request.Model} is not conditional: drop --context");
        if (model.ContextDimension > 0 && request.Context is null)
            throw new BadInputException($"{request.Model} is a conditional model: give --context with one context row, or one per sample");
        using var context = request.Context is null ? null : new CsvRowReader(request.Context, request.Header);
        float[,]? single = null;
        if (context is not null)
        {
            CheckColumns(context.Columns, context.Path, model.ContextDimension, "context");
            // one row is used for every sample; otherwise the file streams beside the draw
            var first = context.ReadChunk(1)!;
            if (context.AtEnd) single = Floats(first);
            else if (request.Count == 1) throw new BadInputException($"{context.Path}: expected 1 context row, got more");
            else context.Dispose();
        }
        using var streamed = context is not null && single is null ? new CsvRowReader(request.Context!, request.Header) : null;
        AtomicFile.Write(request.Out, stream =>
        {
            using var writer = new StreamWriter(stream, Utf8, 1 << 16);
            if (model.ColumnNames.Count > 0) writer.Write(string.Join(',', model.ColumnNames.Select(CsvField)) + "\n");
            long done = 0;
            for (long k = 0; done < request.Count; k++)
            {
                cancel.ThrowIfCancellationRequested();
                int rows = (int)Math.Min(Chunking.Rows, request.Count - done);
                var seed = Chunking.Seed(request.Seed, k);
                var drawn =
                    single is not null ? model.Sample(Repeat(single, rows), seed)
                    : streamed is not null ? model.Sample(Floats(SampleContext(streamed, rows, request.Count)), seed)
                    : model.Sample(rows, seed);
                WriteRows(writer, drawn);
                done += rows;
            }
            if (streamed is not null && !streamed.AtEnd)
                throw new BadInputException($"{streamed.Path}: expected 1 context row (used for every sample) or {request.Count:N0}, got more");
        });
        output.WriteLine($"wrote {request.Count:N0} samples to {request.Out}");
        return ExitCodes.Ok;
    }

    public static int Plot(TextWriter output, string modelPath, string outPath, int resolution, string? columns = null)
    {
        if (resolution < 16 || resolution > 2000) throw new BadInputException($"--resolution must be in [16, 2000], got {resolution}");
        OutputPaths.CheckFile(outPath);
        var model = Load(modelPath);
        if (model.ContextDimension > 0) throw new BadInputException($"{modelPath} is a conditional model; 'flows plot' draws unconditional models");
        var what = Plotting.Write(model, outPath, resolution, columns is null ? null : ColumnsOf(columns, model.Dimension));
        output.WriteLine($"wrote {outPath} ({what})");
        return ExitCodes.Ok;
    }

    // "--columns 1,5,9" as 0-based indices, checked against the model's dimension and the pairwise plot's limit.
    private static int[] ColumnsOf(string text, int dimension)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var limit = Flows.Plotting.PairwiseMarginals.maxColumns;
        if (parts.Length < 1 || parts.Length > limit)
            throw new BadInputException($"--columns must name 1 to {limit} columns, got '{text}'");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var j) && j >= 1 && j <= dimension
            ? j - 1
            : throw new BadInputException($"--columns: '{p}' is not a column number in [1, {dimension}]")).ToArray();
    }

    private static DensityModel Load(string path)
    {
        if (File.Exists(path)) throw new BadInputException($"--model {path}: is a file; give the model folder 'flows train' wrote");
        // no Directory.Exists check here: loading recovers a model whose folder a killed save left renamed
        try { return DensityModel.Load(path); }
        catch (InvalidDataException e) { throw new BadInputException($"{path}: {e.Message}"); }
        catch (FileNotFoundException e)
        {
            throw new BadInputException($"--model {path}: not a complete model: {System.IO.Path.GetFileName(e.FileName)} is missing");
        }
        catch (DirectoryNotFoundException) { throw new BadInputException($"--model {path}: no such model folder"); }
    }

    private static CsvRowReader? OpenContext(DensityModel model, string? contextPath, HeaderMode header)
    {
        if (model.ContextDimension == 0)
            return contextPath is null ? null : throw new BadInputException("the model is not conditional: drop --context");
        if (contextPath is null) throw new BadInputException($"the model is conditional on {model.ContextDimension} columns: give --context");
        var context = new CsvRowReader(contextPath, header);
        try { CheckColumns(context.Columns, contextPath, model.ContextDimension, "context"); }
        catch { context.Dispose(); throw; }
        return context;
    }

    // The context rows for the data chunk that starts after `before` data rows.
    private static double[,] ContextChunk(CsvRowReader context, int rows, long before, string dataPath)
    {
        var chunk = context.ReadChunk(rows);
        if (chunk is null || chunk.GetLength(0) < rows)
            throw new BadInputException($"{context.Path}: has {context.RowsRead:N0} rows, {dataPath} has more: its data row {before + (chunk?.GetLength(0) ?? 0) + 1:N0} has no context row; one context row per data row");
        return chunk;
    }

    private static double[,] SampleContext(CsvRowReader context, int rows, int count)
    {
        var chunk = context.ReadChunk(rows);
        if (chunk is null || chunk.GetLength(0) < rows)
            throw new BadInputException($"{context.Path}: expected 1 context row (used for every sample) or {count:N0}, got {context.RowsRead:N0}");
        return chunk;
    }

    private static CsvTable MatchingContext(CsvTable context, string path, int rows) =>
        context.Rows == rows ? context : throw new BadInputException($"{path}: has {context.Rows} rows, the data has {rows}; one context row per data row");

    private static void CheckColumns(int columns, string path, int expected, string what)
    {
        if (columns != expected)
            throw new BadInputException($"{path}: has {columns} columns, the model's {what} has {expected}");
    }

    private static void WriteRows(TextWriter writer, float[,] rows)
    {
        int columns = rows.GetLength(1);
        for (int i = 0; i < rows.GetLength(0); i++)
        {
            for (int j = 0; j < columns; j++)
            {
                if (j > 0) writer.Write(',');
                writer.Write(rows[i, j].ToString("R", CultureInfo.InvariantCulture));
            }
            writer.Write('\n');
        }
    }

    // a name as one CSV field: quoted, with its quotes doubled, when it holds a separator, a quote or a line break
    private static string CsvField(string name) =>
        name.IndexOfAny([',', '"', '\n', '\r']) < 0 && name.Trim() == name ? name : $"\"{name.Replace("\"", "\"\"")}\"";

    private static readonly System.Text.UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static T WithProgress<T>(TextWriter output, int steps, Func<IProgress<TrainingProgress>, T> run)
    {
        if (!ReferenceEquals(output, System.Console.Out) || System.Console.IsOutputRedirected)
        {
            // Plain lines: logs and tests read them; a live bar would be noise there. The first report
            // is shown too, so a reader knows training is under way before a tenth of it has run.
            var every = Math.Max(1, steps / 10);
            var lastShown = 0;
            return run(new Reporter(p =>
            {
                if (lastShown > 0 && p.Step - lastShown < every && p.Step < p.TotalSteps) return;
                lastShown = p.Step;
                var validation = p.ValidationLoss is double v ? $"  validation {v:F4}" : "";
                output.WriteLine($"step {p.Step,6}/{p.TotalSteps}  loss {p.Loss:F4}{validation}");
            }));
        }
        T result = default!;
        try
        {
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
        }
        finally
        {
            AnsiConsole.Cursor.Show(); // the live bar hides it; a cancelled or failed fit must not leave it hidden
        }
        return result;
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

    private static float[,] Repeat(float[,] row, int count)
    {
        var result = new float[count, row.GetLength(1)];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < row.GetLength(1); j++)
                result[i, j] = row[0, j];
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
