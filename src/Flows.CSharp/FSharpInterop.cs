using Flows.Tensors;
using Flows.Training;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace Flows.CSharp;

/// <summary>The only file that builds F# values (lists, options, functions, settings maps): no F#
/// type appears in the public surface of this assembly.</summary>
internal static class FSharpInterop
{
    /// <summary>An F# list of the items.</summary>
    public static FSharpList<T> List<T>(params T[] items) => ListModule.OfArray(items);

    /// <summary>An F# option: None for null.</summary>
    public static FSharpOption<T> Option<T>(T? value) where T : class => value is null ? FSharpOption<T>.None : FSharpOption<T>.Some(value);

    /// <summary>The value of an option, or null for None.</summary>
    public static T? ValueOrNull<T>(FSharpOption<T>? option) where T : class => FSharpOption<T>.get_IsSome(option) ? option!.Value : null;

    /// <summary>An F# function from a delegate.</summary>
    public static FSharpFunc<TIn, TOut> Function<TIn, TOut>(Func<TIn, TOut> f) => FuncConvert.FromFunc(f);

    /// <summary>A curried F# function of two arguments from a delegate.</summary>
    public static FSharpFunc<T1, FSharpFunc<T2, TOut>> Function<T1, T2, TOut>(Func<T1, T2, TOut> f) => FuncConvert.FromFunc(f);

    /// <summary>A curried F# function of three arguments returning a pair, from a delegate.</summary>
    public static FSharpFunc<T1, FSharpFunc<T2, FSharpFunc<T3, Tuple<TOut1, TOut2>>>> Function<T1, T2, T3, TOut1, TOut2>(Func<T1, T2, T3, (TOut1, TOut2)> f) =>
        FuncConvert.FromFunc<T1, T2, T3, Tuple<TOut1, TOut2>>((a, b, c) => f(a, b, c).ToTuple());

    /// <summary>Saved settings from C# values: int, double, string, int[] and double[].</summary>
    public static FSharpMap<string, Setting> Settings(IReadOnlyDictionary<string, object> settings) =>
        MapModule.OfSeq(settings.Select(kv => Tuple.Create(kv.Key, kv.Value switch
        {
            int v => Setting.NewInt(v),
            double v => Setting.NewFloat(v),
            float v => Setting.NewFloat(v),
            string v => Setting.NewText(v),
            int[] v => Setting.NewInts(v),
            double[] v => Setting.NewFloats(v),
            var other => throw new ArgumentException(
                $"setting '{kv.Key}' is a {other?.GetType().Name ?? "null"}; expected int, double, string, int[] or double[]", nameof(settings)),
        })));

    /// <summary>Settings as C# values (the inverse of <see cref="Settings"/>).</summary>
    public static IReadOnlyDictionary<string, object> SettingsOf(FSharpMap<string, Setting> settings) =>
        settings.ToDictionary(kv => kv.Key, kv => kv.Value switch
        {
            Setting.Int v => (object)v.Item,
            Setting.Float v => v.Item,
            Setting.Text v => v.Item,
            Setting.Ints v => (int[])v.Item.Clone(),
            Setting.Floats v => (double[])v.Item.Clone(),
            _ => throw new InvalidOperationException($"unknown setting kind {kv.Value}"),
        });

    /// <summary>An F# option of a nullable value.</summary>
    public static FSharpOption<T> Option<T>(T? value) where T : struct => value is T v ? FSharpOption<T>.Some(v) : FSharpOption<T>.None;

    /// <summary>The value of an option of a value type, or null for None.</summary>
    public static T? NullableOf<T>(FSharpOption<T>? option) where T : struct => FSharpOption<T>.get_IsSome(option) ? option!.Value : null;

    /// <summary>The core's data-fit options.</summary>
    public static DataFitOptions DataFitOptions(FitOptions options, Action<Progress>? progress, Func<bool> shouldStop)
    {
        var d = DataFit.defaults;
        return new DataFitOptions(
            Option(options.Steps), Option(options.Epochs), Option(options.BatchSize), options.LearningRate, Option(options.WeightDecay),
            Option(options.ValidationFraction), Option(options.Patience), Option(options.ValidateEvery), options.GaussianFloor,
            options.Standardise, options.GradientClipNorm is double clip ? FSharpOption<double>.Some(clip) : d.ClipNorm, OptimiserOf(options.Optimiser), ScheduleOf(options.Schedule), options.Seed, options.ReportEvery,
            progress is null ? FSharpOption<FSharpFunc<Progress, Unit>>.None : FSharpOption<FSharpFunc<Progress, Unit>>.Some(FuncConvert.FromAction(progress)),
            FSharpOption<FSharpFunc<Unit, bool>>.Some(FuncConvert.FromFunc(shouldStop)),
            Option(options.RefitOnAllRows));
    }

    /// <summary>The core's training options for a fit of <paramref name="steps"/> steps.</summary>
    public static TrainOptions TrainOptions(FitOptions options, int steps, Tensor? validation, Action<Progress>? progress, Func<bool> shouldStop, ICollective? collective = null)
    {
        var d = TrainOptionsModule.defaults;
        var optimiser = OptimiserOf(options.Optimiser) is { } chosen ? chosen.Value : d.Optimiser;
        return new TrainOptions(
            steps, options.BatchSize ?? 256, options.LearningRate,
            OptimiserModule.withWeightDecay(options.WeightDecay ?? 0.0, optimiser), ScheduleOf(options.Schedule).Invoke(steps),
            options.GradientClipNorm is double clip ? FSharpOption<double>.Some(clip) : d.ClipNorm, options.Seed,
            Option(validation), options.ValidateEvery ?? 100,
            options.Patience is int patience ? FSharpOption<int>.Some(patience) : FSharpOption<int>.None,
            d.MaxBadSteps, options.ReportEvery,
            progress is null ? FSharpOption<FSharpFunc<Progress, Unit>>.None : FSharpOption<FSharpFunc<Progress, Unit>>.Some(FuncConvert.FromAction(progress)),
            FSharpOption<FSharpFunc<Unit, bool>>.Some(FuncConvert.FromFunc(shouldStop)), collective ?? d.Collective);
    }

    /// <summary>The core optimiser for a façade choice (weight decay 0: the fit sets its own); None for null.</summary>
    public static FSharpOption<Optimiser> OptimiserOf(FitOptimiser? choice) => choice switch
    {
        null => FSharpOption<Optimiser>.None,
        FitOptimiser.Adam => FSharpOption<Optimiser>.Some(Optimiser.NewAdam(0.9, 0.999, 1e-8, 0.0)),
        FitOptimiser.AdamW => FSharpOption<Optimiser>.Some(Optimiser.NewAdamW(0.9, 0.999, 1e-8, 0.0)),
        FitOptimiser.Sgd => FSharpOption<Optimiser>.Some(Optimiser.NewSgd(0.9, 0.0)),
        _ => throw new ArgumentOutOfRangeException(nameof(choice), choice, "not an optimiser"),
    };

    /// <summary>The core schedule for a façade choice, as a function of the fit's planned steps.</summary>
    public static FSharpFunc<int, Schedule> ScheduleOf(LearningRateSchedule schedule) => schedule switch
    {
        LearningRateSchedule.Constant => FuncConvert.FromFunc<int, Schedule>(_ => Schedule.Constant),
        LearningRateSchedule.Cosine => FuncConvert.FromFunc<int, Schedule>(steps => Schedule.NewCosine(steps, 0.0)),
        _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "not a schedule"),
    };

    /// <summary>The core's (step, validation NLL) tuples as the façade's records.</summary>
    public static ValidationLoss[] ValidationLosses(Tuple<int, double>[] validations) =>
        validations.Select(v => new ValidationLoss(v.Item1, v.Item2)).ToArray();

    /// <summary>The validation loss of a progress report, or null.</summary>
    public static double? Validation(Progress p) => FSharpOption<double>.get_IsSome(p.Validation) ? p.Validation.Value : null;
}
