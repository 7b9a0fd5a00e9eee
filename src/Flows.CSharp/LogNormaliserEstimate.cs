namespace Flows.CSharp;

/// <summary>An importance-sampling estimate of log Z = log ∫ p̃(x) dx with the model q as the proposal: the weights
/// are w = p̃(x)/q(x) at draws x ~ q, and Z is their mean.</summary>
/// <param name="LogZ">log of the mean weight.</param>
/// <param name="StandardError">Standard error of <paramref name="LogZ"/> by the delta method, sd(w) / (mean(w) √n);
/// it understates the error when the weights are heavy-tailed (a low <paramref name="EffectiveSampleSize"/>).</param>
/// <param name="EffectiveSampleSize">Kish's effective sample size (Σw)² / Σw²: n when q equals the normalised
/// target, near 1 when one draw dominates.</param>
/// <param name="Samples">Draws n the estimate used.</param>
public sealed record LogNormaliserEstimate(double LogZ, double StandardError, double EffectiveSampleSize, int Samples)
{
    /// <summary><see cref="EffectiveSampleSize"/> / <see cref="Samples"/>, in (0, 1]: how well the model covers the target.</summary>
    public double EffectiveSampleFraction => EffectiveSampleSize / Samples;
}
