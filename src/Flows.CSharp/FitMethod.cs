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
    /// <summary>Maximum likelihood plus RNODE's kinetic-energy and Jacobian penalties (Finlay et al. 2020), with STEER's
    /// random end times if asked (<see cref="DensityModel.CreateRnode"/>).</summary>
    Rnode,
    /// <summary>Maximum likelihood plus OT-Flow's transport-cost and HJB penalties (Onken et al. 2021;
    /// <see cref="DensityModel.CreateOtFlow"/> with penalties).</summary>
    OtFlow,
}
