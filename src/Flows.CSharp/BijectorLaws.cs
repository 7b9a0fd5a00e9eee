using Flows.Laws;
using CoreLawReport = Flows.Laws.LawReport;
using LawSuite = Flows.Laws.Laws;

namespace Flows.CSharp;

/// <summary>The law suite of Flows (the package Flows.Laws) for any layer, the library's or a
/// <see cref="CustomBijector"/>'s: round trips, log-determinants against the autodiff Jacobian, composition,
/// batches, float32, extreme inputs, domain errors, gradients, normalisation on the plane, save and load.</summary>
public static class BijectorLaws
{
    /// <summary>The names of the laws, in the order a report lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = LawModule.all.Select(LawModule.name).ToArray();

    /// <summary>Checks the laws on <paramref name="layer"/> in float64 (its parameters are cast).</summary>
    /// <param name="layer">The layer; a custom one should be registered first, or the save-load law fails.</param>
    /// <param name="options">Which laws, how many batches, which tolerances; null: the defaults.</param>
    /// <exception cref="ArgumentException">An unknown law name, or a count below 1.</exception>
    public static LawReport Check(Layer layer, LawCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        options ??= new LawCheckOptions();
        var core = LawOptionsModule.forBijector(layer.Bijector);
        var laws = options.Laws is null ? LawModule.all : FSharpInterop.List(options.Laws.Select(LawOf).ToArray());
        if (options.Cases < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Cases, "Cases must be at least 1");
        if (options.MaxBatch < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxBatch, "MaxBatch must be at least 1");
        var roundTrip = options.RoundTripTolerance is double r ? new Tolerance(r, r / 10) : core.RoundTrip;
        var logDet = options.LogDeterminantTolerance is double l ? new Tolerance(l, l / 10) : core.LogDet;
        var checkedOptions = new LawOptions(laws, options.Cases, options.MaxBatch, options.Seed, roundTrip, logDet, core.SameValue, core.Float32,
            core.Normalisation, core.Domain, core.ContextDim, core.Partner);
        var reports = LawSuite.check(checkedOptions, layer.Bijector);
        return new LawReport(layer.Name, reports.Select(Result).ToArray());
    }

    private static LawResult Result(CoreLawReport r) =>
        new(LawModule.name(r.Law), LawReportModule.holds(r), !r.Verdict.IsNotApplicable, r.WorstError, r.Input.ToArray(), r.Detail);

    private static Law LawOf(string name) =>
        LawModule.all.FirstOrDefault(l => LawModule.name(l) == name)
        ?? throw new ArgumentException($"no law '{name}'; the laws are {string.Join(", ", Names)}", "options");
}
