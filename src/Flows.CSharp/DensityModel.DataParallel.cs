using Flows.Data;
using Flows.Tensors;
using Flows.Training;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Data-parallel fitting: each process of a job holds a shard of the table and they train one model.</summary>
public sealed partial class DensityModel
{
    /// <summary>Fits the model by maximum likelihood on this process's <paramref name="shard"/> of a table of
    /// <paramref name="totalRows"/> rows spread over the processes of <paramref name="collective"/> (for example
    /// <see cref="MpiWorld.Start"/> under <c>mpirun -np N</c>): rank r holds the table's rows r, r + N, r + 2N, ….
    /// Every rank draws the same global batches of <see cref="FitOptions.BatchSize"/> rows and gradients are summed
    /// across ranks, so N ranks train the model one process would train on the whole table with the same options.
    /// Unlike <see cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/> it trains the
    /// flow as built for <see cref="FitOptions.Steps"/> steps (1,000 if null): standardisation from sums over every
    /// rank, validation on the ranks' <paramref name="validationShard"/>s if given (early stopping agrees on every
    /// rank), no held-out split, Gaussian floor or refit. Every rank must call it with the same options.</summary>
    /// <param name="shard">This rank's rows.</param>
    /// <param name="totalRows">Rows of the whole table, over every rank.</param>
    /// <param name="collective">The processes training together.</param>
    /// <param name="validationShard">This rank's held-out rows (any, possibly none); null on every rank for no validation.</param>
    /// <param name="options">Steps, batch size, learning rate, optimiser, patience, seed.</param>
    /// <param name="progress">Receives progress reports (the same figures on every rank).</param>
    /// <param name="cancellationToken">Checked every step; a cancellation on any rank stops every rank.</param>
    /// <returns>The fitted model (the same on every rank).</returns>
    public DensityModel FitShard(float[,] shard, int totalRows, MpiWorld collective, float[,]? validationShard = null, FitOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(collective);
        return FitShardOn(collective.Collective, shard, null, totalRows, validationShard, null, options, progress, cancellationToken);
    }

    /// <summary>Fits a conditional model as <see cref="FitShard(float[,], int, MpiWorld, float[,], FitOptions, IProgress{TrainingProgress}, CancellationToken)"/>
    /// fits an unconditional one: every rank holds the context rows of its own rows (row i of <paramref name="contextShard"/>
    /// belongs to row i of <paramref name="shard"/>), so a global batch's contexts line up with its rows. Contexts are
    /// standardised from sums over every rank, as <see cref="Fit(float[,], float[,], FitOptions, IProgress{TrainingProgress}, CancellationToken)"/>
    /// standardises them over the whole table.</summary>
    /// <param name="shard">This rank's rows.</param>
    /// <param name="contextShard">The context of each of this rank's rows (<see cref="ContextDimension"/> columns).</param>
    /// <param name="totalRows">Rows of the whole table, over every rank.</param>
    /// <param name="collective">The processes training together.</param>
    /// <param name="validationShard">This rank's held-out rows (any, possibly none); null on every rank for no validation.</param>
    /// <param name="validationContextShard">The contexts of the held-out rows; given exactly when <paramref name="validationShard"/> is.</param>
    /// <param name="options">Steps, batch size, learning rate, optimiser, patience, seed.</param>
    /// <param name="progress">Receives progress reports (the same figures on every rank).</param>
    /// <param name="cancellationToken">Checked every step; a cancellation on any rank stops every rank.</param>
    /// <returns>The fitted model (the same on every rank).</returns>
    public DensityModel FitShard(float[,] shard, float[,] contextShard, int totalRows, MpiWorld collective, float[,]? validationShard = null,
        float[,]? validationContextShard = null, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(collective);
        ArgumentNullException.ThrowIfNull(contextShard);
        if ((validationShard is null) != (validationContextShard is null))
            throw new ArgumentException("held-out rows need their contexts: give validationShard and validationContextShard together, or neither", nameof(validationContextShard));
        return FitShardOn(collective.Collective, shard, contextShard, totalRows, validationShard, validationContextShard, options, progress, cancellationToken);
    }

    // FitShard on any collective (the tests' single process too); contexts are null for an unconditional model.
    internal DensityModel FitShardOn(ICollective collective, float[,] shard, float[,]? contextShard, int totalRows, float[,]? validationShard,
        float[,]? validationContextShard, FitOptions? options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (ContextDimension > 0 && contextShard is null)
            throw new ArgumentException($"this model is conditional: pass the context of every row of the shard ({ContextDimension} columns)", nameof(contextShard));
        if (ContextDimension == 0 && contextShard is not null)
            throw new ArgumentException("this model is not conditional: pass no context", nameof(contextShard));
        if (FitMethod != FitMethod.MaximumLikelihood) throw new InvalidOperationException($"FitShard fits by maximum likelihood; this model is fitted by {FitMethod}");
        options = Checked(options ?? new FitOptions());
        if (options.Epochs is not null || options.ValidationFraction is not null || options.RefitOnAllRows is not null)
            throw new ArgumentException("FitShard takes Steps, no Epochs; validation rows come as validationShard, not ValidationFraction; it does not refit", nameof(options));
        if (options.Patience is not null && validationShard is null)
            throw new ArgumentException("early stopping (Patience) needs validation rows: pass validationShard", nameof(options));
        var held = ShardRows(shard, Dimension, totalRows, collective, nameof(shard));
        var heldContext = contextShard is null ? null : ShardRows(contextShard, ContextDimension, totalRows, collective, nameof(contextShard));
        if (totalRows < collective.Size) throw new ArgumentOutOfRangeException(nameof(totalRows), totalRows, $"needs at least one row per rank ({collective.Size})");
        Standardisation? Statistics(Standardisation? existing, Tensor? rows) =>
            existing ?? (rows is not null && options.Standardise ? DataParallel.standardisation(collective, rows) : null);
        var standardisation = Statistics(FSharpInterop.ValueOrNull(model.Standardisation), held);
        var contextStandardisation = Statistics(FSharpInterop.ValueOrNull(model.ContextStandardisation), heldContext);
        Tensor On(Standardisation? s, Tensor rows) =>
            ToModelDevice(TensorOf.inDtype(model.Flow.Base.Dtype, s is null ? rows : StandardisationModule.apply(s, rows)));
        Tensor Rows(float[,] rows, int columns, string name) => rows.GetLength(0) == 0
            ? TensorOf.doubles(Array.Empty<double>(), new[] { 0, columns })
            : TensorOf.inDtype(Dtype.Float64, ArrayConversions.ToRows(rows, columns, name));
        Tensor? validation = null;
        if (validationShard is not null)
        {
            validation = On(standardisation, Rows(validationShard, Dimension, nameof(validationShard)));
            if (validationContextShard is not null)
            {
                var c = On(contextStandardisation, Rows(validationContextShard, ContextDimension, nameof(validationContextShard)));
                if (c.shape[0] != validation.shape[0])
                    throw new ArgumentException($"validationContextShard has {c.shape[0]} rows; validationShard has {validation.shape[0]}; one context row per row", nameof(validationContextShard));
                // Train.fit's held-out rows of a conditional flow are [x | c]
                validation = Tensor.cat(new[] { validation, c }, 1);
            }
        }
        var start = new CoreModel(model.Flow, model.ContextDim, FSharpInterop.Option(standardisation), FSharpInterop.Option(contextStandardisation),
            model.Fitting, model.ColumnNames);
        var context = heldContext is null ? null : On(contextStandardisation, heldContext);
        var objective = Objective.NewForwardKl(DataSource.NewSharded(On(standardisation, held), FSharpInterop.Option(context), totalRows));
        // the flow's NLLs are of standardised rows: reports are in the user's units, as Fit's are
        double offset = standardisation is null ? 0.0 : StandardisationModule.logScale(standardisation);
        var fitted = Run(start, objective, options, options.Steps ?? 1000, validation, progress, cancellationToken, collective, offset);
        var report = fitted.LastFit!;
        int validationRows = validation is null ? 0 : (int)Math.Round(SumOverRanks(collective, validation.shape[0]));
        return new DensityModel(fitted.core, report with { FlowValidationLoss = report.BestValidationLoss, TrainRows = totalRows, ValidationRows = validationRows });
    }

    private static double SumOverRanks(ICollective collective, double value)
    {
        var values = new[] { value };
        collective.SumInPlace(values);
        return values[0];
    }

    private static Tensor ShardRows(float[,] shard, int columns, int totalRows, ICollective collective, string name)
    {
        ArgumentNullException.ThrowIfNull(shard, name);
        int expected = (totalRows - collective.Rank + collective.Size - 1) / collective.Size;
        if (shard.GetLength(0) != expected)
            throw new ArgumentException($"rank {collective.Rank} of {collective.Size} should hold {expected} of the {totalRows} rows (rows {collective.Rank}, {collective.Rank} + {collective.Size}, …), got {shard.GetLength(0)}", name);
        return TensorOf.inDtype(Dtype.Float64, ArrayConversions.ToRows(shard, columns, name));
    }
}
