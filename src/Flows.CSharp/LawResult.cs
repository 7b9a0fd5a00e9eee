namespace Flows.CSharp;

/// <summary>The outcome of one law of <see cref="BijectorLaws"/>.</summary>
/// <param name="Law">The law's name, as <see cref="BijectorLaws.Names"/> lists it.</param>
/// <param name="Passed">False only when the law failed.</param>
/// <param name="Applicable">False when the law does not apply (no parameters, an unbounded domain, not on the plane).</param>
/// <param name="WorstError">The largest |actual − expected| seen; infinite for a non-finite value or an exception.</param>
/// <param name="Input">The input row that showed the worst error (empty when there is none).</param>
/// <param name="Detail">What was compared where, with the tolerance; or why the law did not apply.</param>
public sealed record LawResult(string Law, bool Passed, bool Applicable, double WorstError, IReadOnlyList<double> Input, string Detail);
