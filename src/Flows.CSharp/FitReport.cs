namespace Flows.CSharp;

/// <summary>How a fit went.</summary>
/// <param name="StepsRun">Optimiser steps run.</param>
/// <param name="FinalLoss">The last step's loss (the flow-matching loss for <see cref="FitMethod.FlowMatching"/>, else the NLL).</param>
/// <param name="BestValidationLoss">The best held-out mean negative log-likelihood, when validating.</param>
/// <param name="StoppedEarly">True when early stopping, divergence or cancellation ended the fit before its last step.</param>
/// <param name="Diverged">True when repeated non-finite losses stopped the fit; the model holds the last good parameters.</param>
/// <param name="Message">What happened, in words.</param>
/// <param name="Elapsed">Time the fit took.</param>
public sealed record FitReport(int StepsRun, double FinalLoss, double? BestValidationLoss, bool StoppedEarly, bool Diverged, string Message, TimeSpan Elapsed);

/// <summary>A fit was cancelled through its token. Derives from <see cref="OperationCanceledException"/>,
/// so ordinary cancellation handling works; <see cref="LastModel"/> holds the model as trained so far.</summary>
public sealed class FitCancelledException : OperationCanceledException
{
    internal FitCancelledException(DensityModel lastModel, CancellationToken token)
        : base($"the fit was cancelled after {lastModel.LastFit?.StepsRun ?? 0} steps", token) => LastModel = lastModel;

    /// <summary>The model with the parameters of the last completed step (the best validated ones when validating).</summary>
    public DensityModel LastModel { get; }
}
