namespace Flows.CSharp;

/// <summary>A progress report from a running fit.</summary>
/// <param name="Step">Steps done so far.</param>
/// <param name="TotalSteps">Steps the fit will run unless it stops early or is cancelled.</param>
/// <param name="Loss">The last step's loss: mean negative log-likelihood (nats) or reverse KL up to log Z.</param>
/// <param name="ValidationLoss">Mean negative log-likelihood of the held-out rows when checked at this step.</param>
/// <param name="Elapsed">Time since the fit started.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double? ValidationLoss, TimeSpan Elapsed);

/// <summary>How a fit went.</summary>
/// <param name="StepsRun">Optimiser steps run.</param>
/// <param name="FinalLoss">The last step's loss.</param>
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

/// <summary>Rows mapped through a model, with log|det J| of the map for every row.</summary>
/// <param name="Rows">The mapped rows.</param>
/// <param name="LogDeterminant">log|det J| of the map at each input row.</param>
public sealed record MappedRows(float[,] Rows, float[] LogDeterminant);

/// <summary>The base distribution a composed flow starts from.</summary>
public enum BaseDistribution
{
    /// <summary>N(0, I), no parameters.</summary>
    StandardNormal,
    /// <summary>A Gaussian with learnable mean and per-column scale, starting as N(0, I).</summary>
    DiagonalNormal,
}
