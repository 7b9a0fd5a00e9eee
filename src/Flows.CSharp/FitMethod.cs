namespace Flows.CSharp;

/// <summary>What <see cref="DensityModel.Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
/// minimises for a model; chosen by its recipe and saved with it.</summary>
public enum FitMethod
{
    /// <summary>Maximum likelihood: the mean negative log-likelihood of the rows (forward KL).</summary>
    MaximumLikelihood,
    /// <summary>Conditional flow matching (Lipman et al. 2023): the squared error of the velocity field on
    /// straight paths from base points to rows; no ODE solve while training.</summary>
    FlowMatching,
}
