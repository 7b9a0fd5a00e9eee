namespace Flows.CSharp;

/// <summary>The base distribution a composed flow starts from.</summary>
public enum BaseDistribution
{
    /// <summary>N(0, I), no parameters.</summary>
    StandardNormal,
    /// <summary>A Gaussian with learnable mean and per-column scale, starting as N(0, I).</summary>
    DiagonalNormal,
}
