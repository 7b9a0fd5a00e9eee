using static TorchSharp.torch;

/// <summary>The rational-quadratic spline with identity tails as nflows' and zuko's
/// <c>unconstrained_rational_quadratic_spline</c> write it (softmax bins, cumsum knots, searchsorted,
/// gather), with Flows' conventions so both compute one function: minima 1e-3, end derivatives 1 and
/// inner ones softplus(u + log(e^{1−1e-3} − 1)) + 1e-3, so zero raw parameters give the identity.</summary>
static class RationalQuadratic
{
    private const double MinWidth = 1e-3, MinHeight = 1e-3, MinDerivative = 1e-3;
    private static readonly double DerivativeShift = Math.Log(Math.Exp(1 - MinDerivative) - 1);

    /// <summary>The spline (or, with <paramref name="inverse"/>, its inverse) at v [n, d] from raw
    /// parameters [n, d, 3K−1]: the mapped values and log|dy/dx| (log|dx/dy| when inverse), both [n, d].</summary>
    public static (Tensor, Tensor) Apply(Tensor v, Tensor raw, int bins, double bound, bool inverse)
    {
        var inside = (v >= -bound).logical_and(v <= bound);
        var vs = v.clamp(-bound, bound);
        var (xKnots, widths) = Knots(raw[.., .., ..bins], bins, bound, MinWidth);
        var (yKnots, heights) = Knots(raw[.., .., bins..(2 * bins)], bins, bound, MinHeight);
        var ds = nn.functional.pad(nn.functional.softplus(raw[.., .., (2 * bins)..] + DerivativeShift) + MinDerivative, new long[] { 1, 1 }, value: 1.0);

        var inner = (inverse ? yKnots : xKnots)[.., .., 1..bins].contiguous();
        var bin = searchsorted(inner, vs.unsqueeze(-1), right: true);
        Tensor Pick(Tensor t) => t.gather(-1, bin).squeeze(-1);
        var (x0, w, y0, h, d0, d1) = (Pick(xKnots), Pick(widths), Pick(yKnots), Pick(heights), Pick(ds), Pick(ds[.., .., 1..]));
        var s = h / w;

        Tensor mapped, xi;
        if (inverse)
        {
            var dy = vs - y0;
            var e = d0 + d1 - 2 * s;
            var a = h * (s - d0) + dy * e;
            var b = h * d0 - dy * e;
            var c = -s * dy;
            var discriminant = (b.square() - 4 * a * c).clamp_min(0);
            xi = (2 * c / (-b - discriminant.sqrt())).clamp(0, 1);
            mapped = x0 + xi * w;
        }
        else
        {
            xi = ((vs - x0) / w).clamp(0, 1);
            var t = xi * (1 - xi);
            mapped = y0 + h * (s * xi.square() + d0 * t) / (s + (d0 + d1 - 2 * s) * t);
        }
        var theta = xi * (1 - xi);
        var denominator = s + (d0 + d1 - 2 * s) * theta;
        var logDerivative = 2 * s.log() + (d1 * xi.square() + 2 * s * theta + d0 * (1 - xi).square()).log() - 2 * denominator.log();
        return (where(inside, mapped, v), where(inside, inverse ? -logDerivative : logDerivative, zeros_like(v)));
    }

    // Knots [n, d, K+1] from −bound to bound and bin sizes [n, d, K] from unnormalised sizes [n, d, K].
    private static (Tensor, Tensor) Knots(Tensor raw, int bins, double bound, double minSize)
    {
        var sizes = nn.functional.softmax(raw, -1) * (1 - minSize * bins) + minSize;
        var inner = sizes.cumsum(-1)[.., .., ..(bins - 1)] * (2 * bound) - bound;
        var knots = nn.functional.pad(nn.functional.pad(inner, new long[] { 1, 0 }, value: -bound), new long[] { 0, 1 }, value: bound);
        return (knots, knots[.., .., 1..] - knots[.., .., ..bins]);
    }
}

/// <summary>Fixed spline inputs both sides build from the same formulas (bench/Bench's PeerBench has the
/// F# twin): values v_i = −4.5 + 9·frac(0.618034·i) (some in the tails), raw parameters 2·sin(0.7j + 0.3),
/// and weights cos(i) for the sums compared.</summary>
static class SplineCheck
{
    public static (Tensor, Tensor, Tensor) Inputs(int rows, int dim, int bins)
    {
        var values = Enumerable.Range(0, rows * dim).Select(i => (float)(-4.5 + 9 * ((i * 0.6180339887) % 1.0))).ToArray();
        var raw = Enumerable.Range(0, rows * dim * (3 * bins - 1)).Select(j => (float)(2 * Math.Sin(0.7 * j + 0.3))).ToArray();
        var weights = Enumerable.Range(0, rows * dim).Select(i => (float)Math.Cos(i)).ToArray();
        return (tensor(values, new long[] { rows, dim }), tensor(raw, new long[] { rows, dim, 3 * bins - 1 }), tensor(weights, new long[] { rows, dim }));
    }
}
