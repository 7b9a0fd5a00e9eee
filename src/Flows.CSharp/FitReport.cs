namespace Flows.CSharp;

/// <summary>Why a fit stopped.</summary>
public enum FitStop
{
    /// <summary>Every step ran.</summary>
    Completed,
    /// <summary>Validation stopped improving; the best step's parameters were kept.</summary>
    EarlyStopped,
    /// <summary>Validation stayed far above its best (or non-finite); the best step's parameters were kept.</summary>
    Exploded,
    /// <summary>Repeated non-finite losses; the last parameters with a finite loss were kept.</summary>
    Diverged,
    /// <summary>The cancellation token stopped the fit.</summary>
    Cancelled,
}

/// <summary>Which model a fit returned.</summary>
public enum FittedModel
{
    /// <summary>The trained flow.</summary>
    Flow,
    /// <summary>Only the full-covariance Gaussian: the flow was not better on validation beyond noise.</summary>
    Gaussian,
}

/// <summary>How a fit went. Losses are mean negative log-likelihoods per row in nats of the caller's data
/// (the standardisation included), except the flow-matching training loss.</summary>
/// <param name="StepsRun">Optimiser steps run.</param>
/// <param name="FinalLoss">The last step's loss (the flow-matching loss for <see cref="FitMethod.FlowMatching"/>, else the NLL).</param>
/// <param name="BestValidationLoss">The returned model's held-out NLL, when validating.</param>
/// <param name="StoppedEarly">True when early stopping, divergence or cancellation ended the fit before its last step.</param>
/// <param name="Diverged">True when repeated non-finite losses stopped the fit; the model holds the last good parameters.</param>
/// <param name="Message">What happened, in words.</param>
/// <param name="Elapsed">Time the fit took.</param>
public sealed record FitReport(int StepsRun, double FinalLoss, double? BestValidationLoss, bool StoppedEarly, bool Diverged, string Message, TimeSpan Elapsed)
{
    /// <summary>Why the fit stopped.</summary>
    public FitStop StopReason { get; init; }

    /// <summary>The step whose parameters validation chose, when validating.</summary>
    public int? BestStep { get; init; }

    /// <summary>Which model was returned: the flow, or the Gaussian floor.</summary>
    public FittedModel Chosen { get; init; }

    /// <summary>The trained flow's best held-out NLL, whether or not it was chosen.</summary>
    public double? FlowValidationLoss { get; init; }

    /// <summary>The Gaussian floor's held-out NLL.</summary>
    public double? GaussianValidationLoss { get; init; }

    /// <summary>Rows trained on and rows held out.</summary>
    public int TrainRows { get; init; }

    /// <summary>Rows held out for validation.</summary>
    public int ValidationRows { get; init; }

    /// <summary>True when the chosen model was fitted again on every row after the choice.</summary>
    public bool Refitted { get; init; }

    /// <summary>Things the caller should know (for example float32 data that has lost digits).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The training loss of every step run, in the units of <see cref="FinalLoss"/>: the loss curve.</summary>
    public IReadOnlyList<double> Losses { get; init; } = [];

    /// <summary>The validation loss at each step it was measured, when validating (nats per row of the caller's data).</summary>
    public IReadOnlyList<ValidationLoss> ValidationLosses { get; init; } = [];
}

/// <summary>A validation loss and the optimiser step it was measured after.</summary>
/// <param name="Step">Steps run when it was measured.</param>
/// <param name="Loss">Mean held-out NLL per row, in nats of the caller's data.</param>
public readonly record struct ValidationLoss(int Step, double Loss);

/// <summary>A fit was cancelled through its token. Derives from <see cref="OperationCanceledException"/>,
/// so ordinary cancellation handling works; <see cref="LastModel"/> holds the model as trained so far.</summary>
public sealed class FitCancelledException : OperationCanceledException
{
    internal FitCancelledException(DensityModel lastModel, CancellationToken token)
        : base($"the fit was cancelled after {lastModel.LastFit?.StepsRun ?? 0} steps", token) => LastModel = lastModel;

    /// <summary>The model with the best parameters so far (the best validated ones when validating).</summary>
    public DensityModel LastModel { get; }
}
