using Flows.CSharp;

namespace Flows.Cli;

/// <summary>'flows train' under mpirun: every rank streams the CSV but keeps only its shard of the rows, the ranks
/// train one model with <see cref="DensityModel.FitShard"/>, and rank 0 alone reports and writes the model. A failure
/// on any rank ends the whole job (MPI abort), so no rank waits forever and no model is written.</summary>
internal static class DistributedTraining
{
    /// <summary>Share of the rows held out for validation when --validation is not given.</summary>
    private const double DefaultValidation = 0.2;

    public static int Train(TextWriter output, TextWriter error, TrainRequest request, Func<int, int, string, DensityModel> build, Func<DensityModel, DensityModel> place,
        Action<TextWriter, FitReport, string> summary, Func<TextWriter, int, Func<IProgress<TrainingProgress>, DensityModel>, DensityModel> withProgress,
        CancellationToken cancel)
    {
        var world = MpiWorld.Start();
        try
        {
            if (request.Context is not null) throw new BadInputException("--context: conditional models do not train under mpirun yet; run without mpirun");
            var shard = Shard.Read(request.Data, request.Header, request.Validation ?? DefaultValidation, request.Seed, world.Rank, world.Size);
            if (shard.TrainRows < world.Size) throw new BadInputException($"{request.Data}: {shard.TrainRows} training rows cannot be spread over {world.Size} ranks");
            var model = place(build(shard.TrainRows, shard.Columns, request.Flow));
            if (shard.Header is not null) model = model.WithColumnNames(shard.Header);
            var steps = request.Steps ?? 1000;
            var options = new FitOptions(Steps: steps, BatchSize: request.BatchSize ?? 256, LearningRate: request.LearningRate, Seed: request.Seed,
                Patience: shard.ValidationRows > 0 ? 10 : null, ValidateEvery: Math.Max(1, steps / 50), ReportEvery: Math.Max(1, steps / 100));
            var quiet = world.Rank == 0 ? output : TextWriter.Null;
            quiet.WriteLine($"training on {world.Size} ranks: {request.Flow} ({model.ParameterCount:N0} parameters) on {shard.TrainRows:N0} rows × {shard.Columns} columns of {request.Data} ({shard.ValidationRows:N0} held out), on {model.Device}");
            var fitted = withProgress(quiet, steps, progress =>
                model.FitShard(shard.Train, shard.TrainRows, world, shard.ValidationRows > 0 ? shard.Validation : null, options, progress, cancel));
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

    /// <summary>This rank's rows of a CSV: the rows are held out by a seeded hash of their index (the same on every
    /// rank); training row j (counting training rows only) belongs to rank j mod size, and so does held-out row k.</summary>
    private sealed record Shard(string[]? Header, int Columns, float[,] Train, int TrainRows, float[,] Validation, int ValidationRows)
    {
        public static Shard Read(string path, HeaderMode header, double validation, ulong seed, int rank, int size)
        {
            using var reader = new CsvRowReader(path, header);
            var train = new List<double[]>();
            var held = new List<double[]>();
            int trainRows = 0, heldRows = 0;
            long index = 0;
            while (reader.ReadChunk(Chunking.Rows) is { } chunk)
                for (int i = 0; i < chunk.GetLength(0); i++, index++)
                {
                    if (HeldOut(index, validation, seed))
                    {
                        if (heldRows++ % size == rank) held.Add(Row(chunk, i));
                    }
                    else if (trainRows++ % size == rank) train.Add(Row(chunk, i));
                }
            return new Shard(reader.Header, reader.Columns, Matrix(train, reader.Columns), trainRows, Matrix(held, reader.Columns), heldRows);
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
