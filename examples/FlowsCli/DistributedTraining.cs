using Flows.CSharp;

namespace Flows.Cli;

/// <summary>'flows train' under mpirun: every rank streams the CSV but keeps only its shard of the rows, the ranks
/// train one model with <c>DensityModel.FitShard</c> (with --context, each rank keeps its rows' context rows
/// too), and rank 0 alone reports and writes the model. A failure
/// on any rank ends the whole job (MPI abort), so no rank waits forever and no model is written.</summary>
internal static class DistributedTraining
{
    /// <summary>Share of the rows held out for validation when --validation is not given.</summary>
    private const double DefaultValidation = 0.2;

    public static int Train(TextWriter output, TextWriter error, TrainRequest request, Func<int, int, int, string, DensityModel> build, Func<DensityModel, DensityModel> place,
        Action<TextWriter, FitReport, string> summary, Func<TextWriter, int, Func<IProgress<TrainingProgress>, DensityModel>, DensityModel> withProgress,
        CancellationToken cancel)
    {
        var world = MpiWorld.Start();
        try
        {
            var shard = Shard.Read(request.Data, request.Context, request.Header, request.Validation ?? DefaultValidation, request.Seed, world.Rank, world.Size);
            if (shard.TrainRows < world.Size) throw new BadInputException($"{request.Data}: {shard.TrainRows} training rows cannot be spread over {world.Size} ranks");
            var model = place(build(shard.TrainRows, shard.Columns, shard.ContextColumns, request.Flow));
            if (shard.Header is not null) model = model.WithColumnNames(shard.Header);
            var steps = request.Steps ?? 1000;
            var options = new FitOptions(Steps: steps, BatchSize: request.BatchSize ?? 256, LearningRate: request.LearningRate, Seed: request.Seed,
                Patience: shard.ValidationRows > 0 ? 10 : null, ValidateEvery: Math.Max(1, steps / 50), ReportEvery: Math.Max(1, steps / 100));
            var quiet = world.Rank == 0 ? output : TextWriter.Null;
            var given = request.Context is null ? "" : $", given {shard.ContextColumns} context column{(shard.ContextColumns == 1 ? "" : "s")} of {request.Context}";
            // on a GPU, say how the gradients travel: as device buffers, or through host memory
            var transfer = !model.Device.StartsWith("cuda") ? ""
                : world.CudaAware ? $"; gradients go to MPI as device buffers ({world.CudaAwareReason})"
                : $"; gradients are staged through host memory ({world.CudaAwareReason})";
            quiet.WriteLine($"training on {world.Size} ranks: {request.Flow} ({model.ParameterCount:N0} parameters) on {shard.TrainRows:N0} rows × {shard.Columns} columns of {request.Data}{given} ({shard.ValidationRows:N0} held out), on {model.Device}{transfer}");
            var validate = shard.ValidationRows > 0;
            var fitted = withProgress(quiet, steps, progress => shard.TrainContext is null
                ? model.FitShard(shard.Train, shard.TrainRows, world, validate ? shard.Validation : null, options, progress, cancel)
                : model.FitShard(shard.Train, shard.TrainContext, shard.TrainRows, world, validate ? shard.Validation : null,
                    validate ? shard.ValidationContext : null, options, progress, cancel));
            var report = fitted.LastFit!;
            if (report.Diverged) throw new InvalidOperationException($"training diverged: {report.Message}; nothing written to {request.Out}");
            if (world.Rank == 0)
            {
                fitted.Save(request.Out);
                summary(output, report, request.Out);
            }
            world.Barrier();
            world.Dispose();
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            error.WriteLine($"rank {world.Rank} of {world.Size} failed: {e.Message}");
            error.Flush();
            world.Abort(e is BadInputException or ArgumentException ? ExitCodes.BadInput : ExitCodes.Failure);
            throw; // not reached: the abort ends the process
        }
    }

    /// <summary>This rank's rows of a CSV, and of its context CSV if any (read in step, row for row): the rows are held
    /// out by a seeded hash of their index (the same on every rank); training row j (counting training rows only)
    /// belongs to rank j mod size, and so does held-out row k. Contexts are null without a context CSV.</summary>
    private sealed record Shard(string[]? Header, int Columns, int ContextColumns, float[,] Train, float[,]? TrainContext, int TrainRows,
        float[,] Validation, float[,]? ValidationContext, int ValidationRows)
    {
        public static Shard Read(string path, string? contextPath, HeaderMode header, double validation, ulong seed, int rank, int size)
        {
            using var reader = new CsvRowReader(path, header);
            using var contexts = contextPath is null ? null : new CsvRowReader(contextPath, header);
            var train = new List<double[]>();
            var held = new List<double[]>();
            var trainContext = new List<double[]>();
            var heldContext = new List<double[]>();
            int trainRows = 0, heldRows = 0;
            long index = 0;
            while (reader.ReadChunk(Chunking.Rows) is { } chunk)
            {
                var context = contexts is null ? null : ContextChunk(contexts, chunk.GetLength(0), index, path);
                for (int i = 0; i < chunk.GetLength(0); i++, index++)
                {
                    if (HeldOut(index, validation, seed))
                    {
                        if (heldRows++ % size != rank) continue;
                        held.Add(Row(chunk, i));
                        if (context is not null) heldContext.Add(Row(context, i));
                    }
                    else if (trainRows++ % size == rank)
                    {
                        train.Add(Row(chunk, i));
                        if (context is not null) trainContext.Add(Row(context, i));
                    }
                }
            }
            if (contexts is not null && !contexts.AtEnd)
                throw new BadInputException($"{contexts.Path}: has more rows than the {index:N0} of {path}; one context row per data row");
            int contextColumns = contexts?.Columns ?? 0;
            return new Shard(reader.Header, reader.Columns, contextColumns, Matrix(train, reader.Columns), contexts is null ? null : Matrix(trainContext, contextColumns),
                trainRows, Matrix(held, reader.Columns), contexts is null ? null : Matrix(heldContext, contextColumns), heldRows);
        }

        // The context rows of the data chunk that starts after `before` data rows.
        private static double[,] ContextChunk(CsvRowReader contexts, int rows, long before, string dataPath)
        {
            var chunk = contexts.ReadChunk(rows);
            if (chunk is null || chunk.GetLength(0) < rows)
                throw new BadInputException($"{contexts.Path}: has {contexts.RowsRead:N0} rows, {dataPath} has more: its data row {before + (chunk?.GetLength(0) ?? 0) + 1:N0} has no context row; one context row per data row");
            return chunk;
        }

        // the library's counter-based hash of (seed, index): the same choice on every rank without reading any other row
        private static bool HeldOut(long index, double share, ulong seed) =>
            (Flows.Tensors.Backend.Counter.bits(seed, (ulong)index) >> 11) * (1.0 / (1UL << 53)) < share;

        private static double[] Row(double[,] chunk, int i)
        {
            var row = new double[chunk.GetLength(1)];
            for (int j = 0; j < row.Length; j++) row[j] = chunk[i, j];
            return row;
        }

        private static float[,] Matrix(List<double[]> rows, int columns)
        {
            var matrix = new float[rows.Count, columns];
            for (int i = 0; i < rows.Count; i++)
                for (int j = 0; j < columns; j++) matrix[i, j] = (float)rows[i][j];
            return matrix;
        }
    }
}
