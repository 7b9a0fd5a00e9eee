using TorchSharp;
using static TorchSharp.torch;

/// <summary>RQ-NSF (C) (Durkan et al. 2019): blocks of a fixed random permutation then a rational-quadratic
/// spline coupling whose MLP [d/2, h, h, (d/2)(3K−1)] (ReLU, last layer zero) reads the first half and
/// transforms the second; a standard normal base. As Flows does, the density runs the spline's inverse.</summary>
sealed class NeuralSplineFlow : nn.Module
{
    private readonly nn.Module<Tensor, Tensor>[] nets;
    private readonly Tensor[] inversePermutations;
    private readonly int dim, bins;
    private readonly double bound;

    public NeuralSplineFlow(int dim, int layers, int hidden, int bins, double bound) : base(nameof(NeuralSplineFlow))
    {
        (this.dim, this.bins, this.bound) = (dim, bins, bound);
        int half = dim / 2, transformed = dim - half;
        nets = Enumerable.Range(0, layers).Select(_ =>
        {
            var last = nn.Linear(hidden, transformed * (3 * bins - 1));
            using (no_grad()) { last.weight!.zero_(); last.bias!.zero_(); }
            return (nn.Module<Tensor, Tensor>)nn.Sequential(nn.Linear(half, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), last);
        }).ToArray();
        inversePermutations = Enumerable.Range(0, layers).Select(_ => randperm(dim).argsort()).ToArray();
        for (int i = 0; i < nets.Length; i++) register_module($"net{i}", nets[i]);
    }

    /// <summary>log q(x): each coupling inverted, then its permutation undone, last block first.</summary>
    public Tensor LogProb(Tensor x)
    {
        long n = x.shape[0];
        int half = dim / 2;
        var logDet = zeros(n);
        for (int i = nets.Length - 1; i >= 0; i--)
        {
            var (a, b) = (x[.., ..half], x[.., half..]);
            var raw = nets[i].call(a).view(n, dim - half, 3 * bins - 1);
            var (xb, logDerivative) = RationalQuadratic.Apply(b, raw, bins, bound, inverse: true);
            logDet = logDet + logDerivative.sum(1);
            x = cat(new[] { a, xb }, 1).index_select(1, inversePermutations[i]);
        }
        return StandardNormal.LogProb(x) + logDet;
    }
}

/// <summary>The standard normal log-density of rows.</summary>
static class StandardNormal
{
    public static Tensor LogProb(Tensor z) => (-0.5 * z.square() - 0.5 * Math.Log(2 * Math.PI)).sum(1);
}
