using TorchSharp;
using static TorchSharp.torch;

/// <summary>Dormand–Prince 5(4) as torchdiffeq's "dopri5" runs it, for a state of several tensors:
/// the error ratio |err| / (atol + rtol·max(|y0|, |y1|)) in the mixed norm (root mean square per
/// tensor, the largest over tensors), accepted at ≤ 1; the next step h·min(10, max(0.9·ratio^(−1/5),
/// floor)) with floor 1 for a ratio below 1 and 0.2 otherwise; Hairer's first step in
/// the same norm (one evaluation); and no clipping at t1: the last step may pass it, and y(t1) is read
/// from Shampine's dense output inside that step, as torchdiffeq interpolates.</summary>
static class Dopri5
{
    private static readonly double[] C = { 0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0 };
    private static readonly double[][] A =
    {
        Array.Empty<double>(),
        new[] { 1.0 / 5 },
        new[] { 3.0 / 40, 9.0 / 40 },
        new[] { 44.0 / 45, -56.0 / 15, 32.0 / 9 },
        new[] { 19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729 },
        new[] { 9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656 },
    };
    private static readonly double[] B = { 35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0.0 };
    // b − b̂: h·Σ E_i·k_i estimates the step's local error
    private static readonly double[] E = { 71.0 / 57600, 0.0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40 };
    // Shampine's dense output (Hairer's contd5), torchdiffeq's interpolant written per stage
    private static readonly double[] D =
    {
        -12715105075.0 / 11282082432, 0.0, 87487479700.0 / 32700410799, -10690763975.0 / 1880347072,
        701980252875.0 / 199316789632, -1453857185.0 / 822651844, 69997945.0 / 29380423,
    };
    private const double Safety = 0.9, IFactor = 10.0, DFactor = 0.2;
    private const int MaxSteps = 10_000;

    /// <summary>y(t1) for y' = f(t, y) from y(t0) = y0, and the number of evaluations of f.</summary>
    public static (Tensor[] Final, int Nfe) Solve(Func<double, Tensor[], Tensor[]> f, Tensor[] y0, double t0, double t1, double rtol, double atol)
    {
        int nfe = 0;
        Tensor[] Eval(double t, Tensor[] y) { nfe++; return f(t, y); }
        double direction = Math.Sign(t1 - t0);
        var k1 = Eval(t0, y0);
        double h = InitialStep(Eval, t0, y0, k1, direction, rtol, atol);
        double t = t0, stepStart = t0, stepSize = 0;
        var y = y0;
        var (stepY, stepKs) = (y0, Array.Empty<Tensor[]>());
        for (int attempts = 0; direction * (t1 - t) > 0; attempts++)
        {
            double hs = direction * h;
            if (attempts >= MaxSteps || t + hs == t) throw new InvalidOperationException($"dopri5: stuck at t = {t}");
            var ks = new Tensor[7][];
            ks[0] = k1;
            for (int i = 1; i < 6; i++) ks[i] = Eval(t + C[i] * hs, Combine(y, hs, A[i], ks));
            var y1 = Combine(y, hs, B, ks);
            ks[6] = Eval(t + hs, y1);
            var err = Combine(null, hs, E, ks);
            double ratio = Norm(err.Select((e, n) => e / (atol + rtol * maximum(y[n].abs(), y1[n].abs()))));
            bool accepted = ratio <= 1;
            if (accepted)
            {
                (stepStart, stepSize, stepY, stepKs) = (t, hs, y, ks);
                (t, y, k1) = (t + hs, y1, ks[6]);
            }
            h *= ratio == 0 ? IFactor : double.IsFinite(ratio) ? Math.Min(IFactor, Math.Max(Safety * Math.Pow(ratio, -0.2), ratio < 1 ? 1.0 : DFactor)) : DFactor;
        }
        return (t == t1 ? y : Combine(stepY, stepSize, DenseWeights((t1 - stepStart) / stepSize), stepKs), nfe);
    }

    // Hairer's rule (Solving ODEs I, §II.4) as torchdiffeq's _select_initial_step: h0 from |y0| and |f0| in
    // units of the tolerance, one Euler step to gauge the second derivative, then min(100·h0, h1).
    private static double InitialStep(Func<double, Tensor[], Tensor[]> eval, double t0, Tensor[] y0, Tensor[] f0, double direction, double rtol, double atol)
    {
        var scale = y0.Select(y => atol + rtol * y.abs()).ToArray();
        double d0 = Norm(y0.Select((y, n) => y / scale[n])), d1 = Norm(f0.Select((k, n) => k / scale[n]));
        double h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
        var f1 = eval(t0 + direction * h0, y0.Select((y, n) => y + direction * h0 * f0[n]).ToArray());
        double d2 = Norm(f1.Select((k, n) => (k - f0[n]) / scale[n])) / h0;
        double h1 = d1 <= 1e-15 && d2 <= 1e-15 ? Math.Max(1e-6, h0 * 1e-3) : Math.Pow(0.01 / Math.Max(d1, d2), 0.2);
        return Math.Min(100 * h0, h1);
    }

    // torchdiffeq's mixed norm: the root mean square of each tensor, the largest over the tensors.
    private static double Norm(IEnumerable<Tensor> xs) =>
        xs.Where(x => x.numel() > 0).Select(x => (double)x.detach().square().mean().sqrt().item<float>()).DefaultIfEmpty(0).Max();

    // (y or 0) + h·Σ w_j·k_j, tensor by tensor.
    private static Tensor[] Combine(Tensor[]? y, double h, double[] weights, Tensor[][] ks) =>
        Enumerable.Range(0, ks[0].Length).Select(n =>
        {
            Tensor? acc = y?[n];
            for (int j = 0; j < weights.Length; j++)
                if (weights[j] != 0.0) acc = acc is null ? ks[j][n] * (h * weights[j]) : acc.add(ks[j][n], h * weights[j]);
            return acc!;
        }).ToArray();

    // The stage weights b_i(θ) of y(t + θh) = y + h·Σ b_i(θ)·k_i (contd5).
    private static double[] DenseWeights(double theta) =>
        Enumerable.Range(0, 7).Select(i =>
        {
            double first = i == 0 ? 1 : 0, last = i == 6 ? 1 : 0;
            double inner = 2 * B[i] - first - last + (1 - theta) * D[i];
            return theta * B[i] + theta * (1 - theta) * (first - B[i] + theta * inner);
        }).ToArray();
}
