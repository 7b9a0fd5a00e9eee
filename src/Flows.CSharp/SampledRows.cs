namespace Flows.CSharp;

/// <summary>Rows drawn from a model with the model's log-density at each, in nats.</summary>
/// <param name="Rows">The drawn rows.</param>
/// <param name="LogProb">log p(x) of each row (log p(x | c) for a conditional model).</param>
public sealed record SampledRows(float[,] Rows, float[] LogProb);
