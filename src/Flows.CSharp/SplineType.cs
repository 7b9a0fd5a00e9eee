namespace Flows.CSharp;

/// <summary>The monotone spline of a spline layer.</summary>
public enum SplineType
{
    /// <summary>Rational-quadratic (Durkan et al. 2019, "Neural Spline Flows").</summary>
    RationalQuadratic,
    /// <summary>Piecewise-linear with learnt bin widths (Müller et al. 2019).</summary>
    Linear,
    /// <summary>Piecewise-linear with equal bin widths.</summary>
    LinearFixedWidths,
    /// <summary>Piecewise-quadratic (Müller et al. 2019).</summary>
    Quadratic,
    /// <summary>Monotone cubic with Steffen derivatives (Durkan et al. 2019, "Cubic-Spline Flows").</summary>
    Cubic,
}
