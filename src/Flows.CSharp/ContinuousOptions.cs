namespace Flows.CSharp;

/// <summary>How a fit estimates the divergence tr(∂f/∂z) of a continuous normalising flow's dynamics.</summary>
public enum TraceEstimator
{
    /// <summary>The exact trace: one vector–Jacobian product per column, per evaluation of the dynamics.</summary>
    Exact,
    /// <summary>Hutchinson's estimator with a Gaussian probe (FFJORD): one vector–Jacobian product per evaluation,
    /// an unbiased but noisy log-determinant. For many columns.</summary>
    HutchinsonGaussian,
    /// <summary>Hutchinson's estimator with a Rademacher (±1) probe: lower variance than the Gaussian probe.</summary>
    HutchinsonRademacher,
}

/// <summary>How the gradients of an ODE solve are computed.</summary>
public enum OdeGradient
{
    /// <summary>Backpropagation through the solver's steps: exact gradients of the discrete solve; memory grows with the steps.</summary>
    Backpropagation,
    /// <summary>The adjoint method (Chen et al. 2018): a second solve backwards in time; memory constant in the steps,
    /// gradients accurate to the solver tolerance.</summary>
    Adjoint,
}

/// <summary>How Dopri5 measures a step's error over the rows of a batch.</summary>
public enum StepErrorNorm
{
    /// <summary>Every row meets the tolerance.</summary>
    Max,
    /// <summary>The rows meet it on average (torchdiffeq's default): fewer steps for large batches.</summary>
    RootMeanSquare,
}

/// <summary>How a continuous layer (<see cref="Layer.Cnf(int, int[], double, ulong, OdeOptions?)"/>,
/// <see cref="Layer.OtFlow(int, int, int, double, ulong, OdeOptions?, int)"/>) solves its ODE; saved with the layer.</summary>
/// <param name="Gradient">How the solve is differentiated.</param>
/// <param name="Tolerance">Dopri5's absolute and relative tolerance (float32 solves use at least 1e-6 and 1e-5).</param>
/// <param name="ErrorNorm">How a step's error is measured over the batch.</param>
public sealed record OdeOptions(
    OdeGradient Gradient = OdeGradient.Backpropagation,
    double Tolerance = 1e-5,
    StepErrorNorm ErrorNorm = StepErrorNorm.Max);

/// <summary>RNODE's regularisers (Finlay et al. 2020) for <see cref="DensityModel.CreateRnode"/>: the fit minimises
/// NLL + <paramref name="Kinetic"/>·∫‖f‖² dt + <paramref name="Jacobian"/>·∫‖∂f/∂z‖²_F dt, which favours straight,
/// cheap-to-solve dynamics; with <paramref name="SteerHalfWidth"/> each step integrates to an end time drawn from
/// U(T − b, T + b) (STEER, Ghosh et al. 2020).</summary>
/// <param name="Kinetic">λ_K, the weight of the kinetic energy (≥ 0; the paper's 0.01).</param>
/// <param name="Jacobian">λ_J, the weight of the Jacobian's Frobenius norm (≥ 0; the paper's 0.01).</param>
/// <param name="SteerHalfWidth">STEER's b, in (0, T); null: the fixed end time T.</param>
public sealed record RnodeRegularisation(double Kinetic = 0.01, double Jacobian = 0.01, double? SteerHalfWidth = null);

/// <summary>OT-Flow's penalties (Onken et al. 2021) for <see cref="DensityModel.CreateOtFlow"/>: the fit minimises
/// NLL + <paramref name="Transport"/>·L + <paramref name="Hjb"/>·R, with L = ∫ ½‖∇Φ‖² dt the transport cost and R the
/// Hamilton–Jacobi–Bellman residual of the potential Φ.</summary>
/// <param name="Transport">α_L (≥ 0).</param>
/// <param name="Hjb">α_R (≥ 0).</param>
public sealed record OtFlowPenalties(double Transport = 0.01, double Hjb = 0.05);
