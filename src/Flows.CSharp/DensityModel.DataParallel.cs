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
        return FitShardOn(collective.Collective, shard, totalRows, validationShard, options, progress, cancellationToken);
    }

    // FitShard on any collective (the tests' single process too).
    internal DensityModel FitShardOn(ICollective collective, float[,] shard, int totalRows, float[,]? validationShard, FitOptions? options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (ContextDimension > 0) throw new InvalidOperationException("FitShard fits unconditional models; this one is conditional");
        if (FitMethod != FitMethod.MaximumLikelihood) throw new InvalidOperationException($"FitShard fits by maximum likelihood; this model is fitted by {FitMethod}");
        options = Checked(options ?? new FitOptions());
        if (options.Epochs is not null || options.ValidationFraction is not null || options.RefitOnAllRows is not null)
            throw new ArgumentException("FitShard takes Steps, no Epochs; validation rows come as validationShard, not ValidationFraction; it does not refit", nameof(options));
        if (options.Patience is not null && validationShard is null)
            throw new ArgumentException("early stopping (Patience) needs validation rows: pass validationShard", nameof(options));
        var held = ShardRows(shard, totalRows, collective);
        if (totalRows < collective.Size) throw new ArgumentOutOfRangeException(nameof(totalRows), totalRows, $"needs at least one row per rank ({collective.Size})");
        var standardisation = FSharpInterop.ValueOrNull(model.Standardisation)
            ?? (options.Standardise ? DataParallel.standardisation(collective, held) : null);
        Tensor OnModel(Tensor rows) =>
            ToModelDevice(TensorOf.inDtype(model.Flow.Base.Dtype, standardisation is null ? rows : StandardisationModule.apply(standardisation, rows)));
        var validation = validationShard is null ? null
            : validationShard.GetLength(0) == 0 ? OnModel(TensorOf.doubles(Array.Empty<double>(), new[] { 0, Dimension }))
            : OnModel(ArrayConversions.ToRows(validationShard, Dimension, nameof(validationShard)));
        var start = ModelModule.withStandardisation(FSharpInterop.Option(standardisation), model);
        var objective = Objective.NewForwardKl(DataSource.NewSharded(OnModel(held), FSharpInterop.Option<Tensor>(null), totalRows));
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

    private Tensor ShardRows(float[,] shard, int totalRows, ICollective collective)
    {
        ArgumentNullException.ThrowIfNull(shard);
        int expected = (totalRows - collective.Rank + collective.Size - 1) / collective.Size;
        if (shard.GetLength(0) != expected)
            throw new ArgumentException($"rank {collective.Rank} of {collective.Size} should hold {expected} of the {totalRows} rows (rows {collective.Rank}, {collective.Rank} + {collective.Size}, …), got {shard.GetLength(0)}", nameof(shard));
        return TensorOf.inDtype(Dtype.Float64, ArrayConversions.ToRows(shard, Dimension, nameof(shard)));
    }
}
