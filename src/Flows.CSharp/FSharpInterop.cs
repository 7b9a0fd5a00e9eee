using Flows.Training;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace Flows.CSharp;

/// <summary>The only file that builds F# values (lists, options, records): no F# type appears in
/// the public surface of this assembly.</summary>
internal static class FSharpInterop
{
    /// <summary>An F# list of the items.</summary>
    public static FSharpList<T> List<T>(params T[] items) => ListModule.OfArray(items);

    /// <summary>The core's training options from the façade's.</summary>
    public static TrainOptions TrainOptions(FitOptions options)
    {
        if (options.Steps < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Steps, "Steps must be at least 1");
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        if (!(options.LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(options), options.LearningRate, "LearningRate must be above 0");
        var d = TrainOptionsModule.defaults;
        return new TrainOptions(
            options.Steps, options.BatchSize, options.LearningRate, d.Optimiser, d.Schedule, d.ClipNorm, options.Seed,
            FSharpOption<Flows.Tensors.Tensor>.None, d.ValidateEvery, d.Patience, d.MaxBadSteps, d.ReportEvery,
            FSharpOption<FSharpFunc<Progress, Unit>>.None, FSharpOption<FSharpFunc<Unit, bool>>.None);
    }
}
