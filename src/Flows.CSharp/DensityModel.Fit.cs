using System.Diagnostics;
using System.Runtime.CompilerServices;
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
    /// likelihood unless built for flow matching) and returns the fitted model as a new model: this one is left
    /// unchanged (as ML.NET's estimators do), so keep the result.</summary>
    /// <param name="data">Training rows of <see cref="Dimension"/> finite values.</param>
    /// <param name="options">Steps or epochs, batch size, learning rate, validation, early stopping, seed.</param>
    /// <param name="progress">Receives a report every <see cref="FitOptions.ReportEvery"/> steps.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The fitted model; <see cref="LastFit"/> says how the fit went (a diverged fit keeps the last good parameters).</returns>
    /// <exception cref="ArgumentException">Empty data, the wrong number of columns, or a value that is not finite (the row and column are named).</exception>
    /// <exception cref="FitCancelledException">The token was cancelled; the exception carries the model trained so far.</exception>
    [OverloadResolutionPriority(1)] // Fit(data, null) means "no options", not an ambiguous call
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
    [OverloadResolutionPriority(1)] // Fit(data, null) means "no options", not an ambiguous call
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

    /// <summary>Fits on a worker thread, as <see cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// with the same parameters in the same order; the task ends in <see cref="FitCancelledException"/> when cancelled.</summary>
    /// <param name="data">Training rows.</param>
    /// <param name="options">Training options.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    [OverloadResolutionPriority(1)] // FitAsync(data, null) means "no options"
    public Task<DensityModel> FitAsync(float[,] data, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        // check the arguments on the caller's thread, so bad data throws here rather than in the task
        var rows = DataRows(data, nameof(data));
        if (ContextDimension > 0) throw new ArgumentException($"this model is conditional: pass a context of {ContextDimension} columns", "context");
        return Task.Run(() => FitRows(rows, null, options, progress, cancellationToken), CancellationToken.None);
    }

    /// <summary>Fits a conditional model on a worker thread, as <see cref="Fit(float[,], float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>.</summary>
    /// <param name="data">Training rows.</param>
    /// <param name="context">One context row per data row.</param>
    /// <param name="options">Training options.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    public Task<DensityModel> FitAsync(float[,] data, float[,] context, FitOptions? options = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var rows = DataRows(data, nameof(data));
        ArgumentNullException.ThrowIfNull(context);
        var contextRows = ContextFor(context, data.GetLength(0));
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
        if (options.Epochs is not null || options.ValidationFraction > 0 || options.Patience is not null)
            throw new ArgumentException("epochs, validation and patience need data; fitting to a density uses Steps", nameof(options));
        // a standardised model's flow lives in standardised units: there the target is p̃(undo(z))·Π scale
        var standardisation = FSharpInterop.ValueOrNull(model.Standardisation);
        Func<Tensor, Tensor> logDensity = standardisation is null ? target.LogDensity
            : z => target.LogDensity(StandardisationModule.undo(standardisation, z)) + StandardisationModule.logScale(standardisation);
        var objective = Objective.NewReverseKl(FSharpInterop.Function(logDensity));
        return Run(model, objective, options, options.Steps ?? 1000, null, progress, cancellationToken);
    }

    private Tensor ContextFor(float[,] context, int rows)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ContextFor(ArrayConversions.ToRows(context, ContextDimension, nameof(context)), rows);
    }

    private Tensor ContextFor(double[,] context, int rows)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ContextFor(ArrayConversions.ToRows(context, ContextDimension, nameof(context)), rows);
    }

    private Tensor ContextFor(Tensor c, int rows)
    {
        RefuseUnneededContext(true);
        if (c.shape[0] != rows) throw new ArgumentException($"the context has {c.shape[0]} rows; the data has {rows}", "context");
        return c;
    }

    private DensityModel FitRows(Tensor rows, Tensor? context, FitOptions? options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        if (context is null && ContextDimension > 0) throw new ArgumentException($"this model is conditional: pass a context of {ContextDimension} columns", "context");
        options = Checked(options ?? new FitOptions());
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        Action<Progress>? report = progress is null ? null
            : p => progress.Report(new TrainingProgress(p.Step, p.TotalSteps, p.Loss, FSharpInterop.Validation(p), TimeSpan.FromSeconds(p.Seconds)));
        var fitOptions = FSharpInterop.DataFitOptions(options, report, () => cancellationToken.IsCancellationRequested);
        Tuple<CoreModel, DataFitReport> result;
        try
        {
            result = DataFit.fit(fitOptions, rows, FSharpInterop.Option(context), TrainingTrace(model, options));
        }
        catch (ArgumentException e) when (e.ParamName is "data" or "context")
        {
            // the core names its own parameter; the caller's is the same name, without F#'s suffix
            throw new ArgumentException(e.Message.Split(" (Parameter")[0], e.ParamName);
        }
        var (fitted, core) = (ExactTrace(result.Item1), result.Item2);
        var training = core.Training;
        var fitReport = new FitReport(
            training.StepsRun,
            training.Losses.Length > 0 ? training.Losses[^1] : double.NaN,
            FSharpInterop.NullableOf(core.ValidationNll),
            training.StoppedEarly,
            training.Stop.IsDiverged,
            Message(core),
            clock.Elapsed)
        {
            StopReason = StopOf(training.Stop),
            BestStep = FSharpInterop.NullableOf(training.BestStep),
            Chosen = core.Chosen.IsGaussian ? FittedModel.Gaussian : FittedModel.Flow,
            FlowValidationLoss = FSharpInterop.NullableOf(core.FlowValidationNll),
            GaussianValidationLoss = FSharpInterop.NullableOf(core.GaussianValidationNll),
            TrainRows = core.TrainRows,
            ValidationRows = core.ValidationRows,
            Refitted = core.Refitted,
            Warnings = core.Warnings.ToArray(),
            Losses = training.Losses,
            ValidationLosses = FSharpInterop.ValidationLosses(training.Validations),
        };
        var fittedModel = new DensityModel(fitted, fitReport);
        if (cancellationToken.IsCancellationRequested)
            throw new FitCancelledException(fittedModel, cancellationToken);
        return fittedModel;
    }

    // The training message, then the choice in words.
    private static string Message(DataFitReport report)
    {
        var choice = (FSharpInterop.NullableOf(report.FlowValidationNll), FSharpInterop.NullableOf(report.GaussianValidationNll)) switch
        {
            (double f, double g) when report.Chosen.IsGaussian => $"; kept the Gaussian (validation NLL {g:F4}) over the flow ({f:F4}): not better beyond noise",
            (double f, double g) => $"; kept the flow (validation NLL {f:F4}) over the Gaussian ({g:F4})",
            _ => "",
        };
        return report.Training.Message + choice + (report.Refitted ? "; refitted on every row" : "");
    }

    // CNF layers estimate their divergence as the options say while training, and use the exact trace otherwise
    private static CoreModel TrainingTrace(CoreModel start, FitOptions options)
    {
        var noise = options.TraceEstimator switch
        {
            null or TraceEstimator.Exact => null,
            TraceEstimator.HutchinsonGaussian => Noise.Gaussian,
            TraceEstimator.HutchinsonRademacher => Noise.Rademacher,
            var other => throw new ArgumentOutOfRangeException(nameof(options), other, "TraceEstimator is not one of the enum's values"),
        };
        if (noise is null) return start;
        if (!start.Flow.Layers.Any(layer => layer.Name == "cnf"))
            throw new ArgumentException($"TraceEstimator {options.TraceEstimator} applies to CNF layers, and this model has none", nameof(options));
        var trace = CnfTrace.NewHutchinson(noise, new Generator(options.Seed));
        return ModelModule.withFlow(Cnf.flowWithTrace(trace, start.Flow), start);
    }

    private static CoreModel ExactTrace(CoreModel trained) =>
        ModelModule.withFlow(Cnf.flowWithTrace(CnfTrace.Exact, trained.Flow), trained);

    private static FitStop StopOf(StopReason stop) => stop.Tag switch
    {
        StopReason.Tags.EarlyStopped => FitStop.EarlyStopped,
        StopReason.Tags.Exploded => FitStop.Exploded,
        StopReason.Tags.Diverged => FitStop.Diverged,
        StopReason.Tags.Cancelled => FitStop.Cancelled,
        _ => FitStop.Completed,
    };

    private static FitOptions Checked(FitOptions options)
    {
        if (options.Steps is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Steps, "Steps must be at least 1");
        if (options.Epochs is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Epochs, "Epochs must be at least 1");
        if (options.BatchSize is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        if (!(options.LearningRate > 0) || !double.IsFinite(options.LearningRate)) throw new ArgumentOutOfRangeException(nameof(options), options.LearningRate, "LearningRate must be a finite number above 0");
        if (options.ValidationFraction is double f && !(f >= 0 && f < 1)) throw new ArgumentOutOfRangeException(nameof(options), options.ValidationFraction, "ValidationFraction must be in [0, 1)");
        if (options.Patience is not null && options.ValidationFraction == 0) throw new ArgumentException("early stopping (Patience) needs validation rows: leave ValidationFraction null or above 0", nameof(options));
        if (options.Patience is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Patience, "Patience must be at least 1 epoch");
        if (options.ValidateEvery is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ValidateEvery, "ValidateEvery must be at least 1");
        if (options.ReportEvery < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ReportEvery, "ReportEvery must be at least 1");
        if (options.WeightDecay is double w && !(w >= 0 && double.IsFinite(w))) throw new ArgumentOutOfRangeException(nameof(options), options.WeightDecay, "WeightDecay must be a finite number ≥ 0");
        if (options.GradientClipNorm is double c && !(c > 0)) throw new ArgumentOutOfRangeException(nameof(options), options.GradientClipNorm, "GradientClipNorm must be above 0 (PositiveInfinity: never clip)");
        return options;
    }

    private static DensityModel Run(CoreModel start, Objective objective, FitOptions options, int steps, Tensor? validation, IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken, ICollective? collective = null, double lossOffset = 0)
    {
        // lossOffset turns the flow's NLLs (of standardised rows) into NLLs of the caller's rows
        Action<Progress>? report = progress is null ? null
            : p => progress.Report(new TrainingProgress(p.Step, steps, p.Loss + lossOffset, FSharpInterop.Validation(p) + lossOffset, TimeSpan.FromSeconds(p.Seconds)));
        var trainOptions = FSharpInterop.TrainOptions(options, steps, validation, report, () => cancellationToken.IsCancellationRequested, collective);
        var clock = Stopwatch.StartNew();
        var outcome = Train.fit(trainOptions, objective, TrainingTrace(start, options).Flow);
        var (flow, coreReport) = Train.result(outcome);
        flow = Cnf.flowWithTrace(CnfTrace.Exact, flow);
        var validations = coreReport.Validations;
        var fitReport = new FitReport(
            coreReport.StepsRun,
            coreReport.Losses.Length > 0 ? coreReport.Losses[^1] + lossOffset : double.NaN,
            validations.Length > 0 ? validations.Min(v => v.Item2) + lossOffset : null,
            coreReport.StoppedEarly,
            outcome.IsDiverged,
            coreReport.Message,
            clock.Elapsed);
        var fitted = new DensityModel(ModelModule.withFlow(flow, start), fitReport with
        {
            StopReason = StopOf(coreReport.Stop),
            BestStep = FSharpInterop.NullableOf(coreReport.BestStep),
            Losses = coreReport.Losses.Select(l => l + lossOffset).ToArray(),
            ValidationLosses = FSharpInterop.ValidationLosses(validations).Select(v => v with { Loss = v.Loss + lossOffset }).ToArray(),
        });
        if (cancellationToken.IsCancellationRequested && coreReport.StepsRun < steps)
            throw new FitCancelledException(fitted, cancellationToken);
        return fitted;
    }
}
