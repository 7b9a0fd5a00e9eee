namespace Flows.CSharp;

/// <summary>How <see cref="BijectorLaws.Check"/> checks a layer. Null tolerances take the layer's registered
/// kind (closed-form or iterative inverse, exact or approximate log-det), or closed-form ones.</summary>
/// <param name="Laws">The laws to check, by name (<see cref="BijectorLaws.Names"/>); null: every law.</param>
/// <param name="Cases">Random batches per law.</param>
/// <param name="MaxBatch">Rows per batch are drawn from 1 to this.</param>
/// <param name="Seed">Seed of the batches: the same seed checks the same inputs.</param>
/// <param name="RoundTripTolerance">Absolute tolerance of a round trip (its relative tolerance is a tenth of it).</param>
/// <param name="LogDeterminantTolerance">Absolute tolerance of a log-determinant (its relative tolerance is a tenth of it).</param>
public sealed record LawCheckOptions(
    IReadOnlyList<string>? Laws = null,
    int Cases = 5,
    int MaxBatch = 64,
    int Seed = 20240917,
    double? RoundTripTolerance = null,
    double? LogDeterminantTolerance = null);
