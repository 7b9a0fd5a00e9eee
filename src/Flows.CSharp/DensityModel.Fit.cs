using System.Diagnostics;
using Flows.Data;
using Flows.Continuous;
using Flows.Tensors;
using Flows.Training;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Fitting: on data by the model's own objective (maximum likelihood, or flow matching for
/// <see cref="CreateFlowMatching"/>), and reverse KL to a target density.</summary>
public sealed partial class DensityModel
{
    /// <summary>Fits the model to the rows of <paramref name="data"/> by its <see cref="FitMethod"/> (maximum
    /// likelihood unless built for flow matching) and returns the fitted model.</summary>
    /// <param name="data">Training rows of <see cref="Dimension"/> finite values.</param>
    /// <param name="options">Steps or epochs, batch size, learning rate, validation, early stopping, seed.</param>
    /// <param name="progress">Receives a report every <see cref="FitOptions.ReportEvery"/> steps.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The fitted model; <see cref="LastFit"/> says how the fit went (a diverged fit keeps the last good parameters).</returns>
    /// <exception cref="ArgumentException">Empty data, the wrong number of columns, or a value that is not finite (the row and column are named).</exception>
    /// <exception cref="FitCancelledException">The token was cancelled; the exception carries the model trained so far.</exception>
    public DensityModel Fit(float[,] data, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitRows(DataRows(data, nameof(data)), null, options, progress, cancellationToken);

    /// <summary>Fits a conditional model to <paramref name="data"/> rows given their <paramref name="context"/> rows.</summary>
    /// <inheritdoc cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// <param name="data">Training rows.</param>
    /// <param name="context">One context row of <see cref="ContextDimension"/> values per data row.</param>
    /// <param name="options">Training options.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public DensityModel Fit(float[,] data, float[,] context, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitRows(DataRows(data, nameof(data)), ContextFor(context, data.GetLength(0)), options, progress, cancellationToken);

    /// <summary>Fits the model to double-precision rows (trained in the model's float32).</summary>
    /// <inheritdoc cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    public DensityModel Fit(double[,] data, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitRows(DataRows(data, nameof(data)), null, options, progress, cancellationToken);

    /// <summary>Fits a conditional model to double-precision rows given their context rows (both standardised
    /// in float64 before rounding to the model's float32).</summary>
    /// <inheritdoc cref="Fit(float[,], float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    public DensityModel Fit(double[,] data, double[,] context, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitRows(DataRows(data, nameof(data)), ContextFor(context, data.GetLength(0)), options, progress, cancellationToken);

    /// <summary>Fits the model to rows given one array each (for example parsed from a file as they stream in).</summary>
    /// <inheritdoc cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    public DensityModel Fit(IEnumerable<float[]> data, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitRows(DataRows(data, nameof(data)), null, options, progress, cancellationToken);

    /// <summary>Fits on a worker thread; the task ends in <see cref="FitCancelledException"/> when cancelled.</summary>
    /// <param name="data">Training rows.</param>
    /// <param name="context">Context rows for a conditional model; null otherwise.</param>
    /// <param name="options">Training options.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public Task<DensityModel> FitAsync(float[,] data, float[,]? context = null, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        // check the arguments on the caller's thread, so bad data throws here rather than in the task
        var rows = DataRows(data, nameof(data));
        var contextRows = context is null ? null : ContextFor(context, data.GetLength(0));
        if (context is null && ContextDimension > 0) throw new ArgumentException($"this model is conditional: pass a context of {ContextDimension} columns", nameof(context));
        return Task.Run(() => FitRows(rows, contextRows, options, progress, cancellationToken), CancellationToken.None);
    }

    /// <summary>Fits the model to an unnormalised target density by minimising the reverse KL
    /// divergence E_q[log q − log p̃] over the model's own samples (no data needed).</summary>
    /// <param name="target">The target log-density; its dimension must equal <see cref="Dimension"/>.</param>
    /// <param name="options">Steps, batch size (samples per step), learning rate, seed; validation and epochs do not apply.</param>
    /// <param name="progress">Receives progress reports (the loss is the reverse KL up to log Z).</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public DensityModel FitToDensity(TargetDensity target, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (target.Dimension != Dimension) throw new ArgumentException($"the target has {target.Dimension} columns; the model has {Dimension}", nameof(target));
        if (ContextDimension > 0) throw new InvalidOperationException("a conditional model cannot be fitted to one target density");
        options = Checked(options ?? new FitOptions());
        if (options.Epochs is not null || options.ValidationFraction > 0)
            throw new ArgumentException("epochs and validation need data; fitting to a density uses Steps", nameof(options));
        // a standardised model's flow lives in standardised units: there the target is p̃(undo(z))·Π scale
        var standardisation = FSharpInterop.ValueOrNull(model.Standardisation);
        Func<Tensor, Tensor> logDensity = standardisation is null ? target.LogDensity
            : z => target.LogDensity(StandardisationModule.undo(standardisation, z)) + StandardisationModule.logScale(standardisation);
        var objective = Objective.NewReverseKl(FSharpInterop.Function(logDensity));
        return Run(model, objective, options, options.Steps, null, progress, cancellationToken);
    }

    private Context? ContextFor(float[,] context, int rows)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ContextFor(ArrayConversions.ToRows(context, ContextDimension, nameof(context)), rows);
    }

    private Context? ContextFor(double[,] context, int rows)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ContextFor(ArrayConversions.ToRows(context, ContextDimension, nameof(context)), rows);
    }

    private Context? ContextFor(Tensor c, int rows)
    {
        RefuseUnneededContext(true);
        if (c.shape[0] != rows) throw new ArgumentException($"the context has {c.shape[0]} rows; the data has {rows}", "context");
        return ContextModule.ofCondition(c);
    }

    private DensityModel FitRows(Tensor rows, Context? context, FitOptions? options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (context is null && ContextDimension > 0) throw new ArgumentException($"this model is conditional: pass a context of {ContextDimension} columns", "context");
        options = Checked(options ?? new FitOptions());
        cancellationToken.ThrowIfCancellationRequested();
        var start = model;
        if (options.Standardise && FSharpInterop.ValueOrNull(start.Standardisation) is null)
            start = new CoreModel(start.Flow, start.ContextDim, FSharpInterop.Option(StandardisationModule.ofRows(rows)), start.ContextStandardisation, start.Fitting);
        var standardisation = FSharpInterop.ValueOrNull(start.Standardisation);
        // rows (from host arrays) are split on the host, then moved to the model's device once
        var dtype = start.Flow.Base.Dtype;
        var x = ArrayConversions.WithDtype(standardisation is null ? rows : StandardisationModule.apply(standardisation, rows), dtype);
        var c = context is null ? null : ArrayConversions.WithDtype(FSharpInterop.ValueOrNull(context.Condition)!, dtype);
        int n = x.shape[0];
        Tensor? validation = null;
        if (options.ValidationFraction > 0)
        {
            int held = (int)Math.Floor(n * options.ValidationFraction);
            if (held < 1 || held >= n)
                throw new ArgumentException($"a validation fraction of {options.ValidationFraction} of {n} rows leaves {held} held out and {n - held} to train on; both need at least 1", nameof(options));
            var order = new Generator(options.Seed ^ 0x5EED).permutation(n).toArrayInt();
            var (trainIndex, heldIndex) = (order[held..], order[..held]);
            // a conditional validation set is [x | c], which the core splits again
            validation = c is null ? ArrayConversions.SelectRows(x, heldIndex)
                : ArrayConversions.JoinColumns(ArrayConversions.SelectRows(x, heldIndex), ArrayConversions.SelectRows(c, heldIndex));
            x = ArrayConversions.SelectRows(x, trainIndex);
            c = c is null ? null : ArrayConversions.SelectRows(c, trainIndex);
        }
        x = ToModelDevice(x);
        c = c is null ? null : ToModelDevice(c);
        validation = validation is null ? null : ToModelDevice(validation);
        int trainRows = x.shape[0];
        int steps = options.Epochs is int epochs ? (int)Math.Ceiling((double)epochs * trainRows / Math.Min(options.BatchSize, trainRows)) : options.Steps;
        var source = c is null ? DataSource.NewDataset(x) : DataSource.NewConditional(x, c);
        var objective = start.Fitting is Fitting.FlowMatching matching
            ? FlowMatching.objective(matching.sigmaMin, source)
            : Objective.NewForwardKl(source);
        return Run(start, objective, options, steps, validation, progress, cancellationToken);
    }

    private static FitOptions Checked(FitOptions options)
    {
        if (options.Steps < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Steps, "Steps must be at least 1");
        if (options.Epochs is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Epochs, "Epochs must be at least 1");
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        if (!(options.LearningRate > 0) || !double.IsFinite(options.LearningRate)) throw new ArgumentOutOfRangeException(nameof(options), options.LearningRate, "LearningRate must be a finite number above 0");
        if (!(options.ValidationFraction >= 0 && options.ValidationFraction < 1)) throw new ArgumentOutOfRangeException(nameof(options), options.ValidationFraction, "ValidationFraction must be in [0, 1)");
        if (options.Patience is not null && options.ValidationFraction == 0) throw new ArgumentException("early stopping (Patience) needs a ValidationFraction above 0", nameof(options));
        if (options.Patience is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Patience, "Patience must be at least 1");
        if (options.ValidateEvery < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ValidateEvery, "ValidateEvery must be at least 1");
        if (options.ReportEvery < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ReportEvery, "ReportEvery must be at least 1");
        return options;
    }

    private static DensityModel Run(CoreModel start, Objective objective, FitOptions options, int steps, Tensor? validation, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        Action<Progress>? report = progress is null ? null
            : p => progress.Report(new TrainingProgress(p.Step, steps, p.Loss, FSharpInterop.Validation(p), TimeSpan.FromSeconds(p.Seconds)));
        var trainOptions = FSharpInterop.TrainOptions(options, steps, validation, report, () => cancellationToken.IsCancellationRequested);
        var clock = Stopwatch.StartNew();
        var outcome = Train.fit(trainOptions, objective, start.Flow);
        var (flow, coreReport) = Train.result(outcome);
        var validations = coreReport.Validations;
        var fitReport = new FitReport(
            coreReport.StepsRun,
            coreReport.Losses.Length > 0 ? coreReport.Losses[^1] : double.NaN,
            validations.Length > 0 ? validations.Min(v => v.Item2) : null,
            coreReport.StoppedEarly,
            outcome.IsDiverged,
            coreReport.Message,
            clock.Elapsed);
        var fitted = new DensityModel(new CoreModel(flow, start.ContextDim, start.Standardisation, start.ContextStandardisation, start.Fitting), fitReport);
        if (cancellationToken.IsCancellationRequested && coreReport.StepsRun < steps)
            throw new FitCancelledException(fitted, cancellationToken);
        return fitted;
    }
}
