namespace Flows.CSharp;

/// <summary>A progress report from a running fit.</summary>
/// <param name="Step">Steps done so far.</param>
/// <param name="TotalSteps">Steps the fit will run unless it stops early or is cancelled.</param>
/// <param name="Loss">The last step's loss: mean negative log-likelihood (nats) or reverse KL up to log Z.</param>
/// <param name="ValidationLoss">Mean negative log-likelihood of the held-out rows when checked at this step.</param>
/// <param name="Elapsed">Time since the fit started.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double? ValidationLoss, TimeSpan Elapsed);
