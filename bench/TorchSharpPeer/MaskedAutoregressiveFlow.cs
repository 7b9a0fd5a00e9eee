using TorchSharp;
using static TorchSharp.torch;

/// <summary>MAF (Papamakarios et al. 2017): blocks of a reversal then an affine MADE layer, as Flows'
/// <c>Autoregressive.maf</c> builds it: tanh hidden layers, outputs (shift, s) per feature, log-scale
/// α = 3·(2/π)·atan(s/3); density in one pass, z = (x − shift)·exp(−α). A standard normal base.</summary>
sealed class MaskedAutoregressiveFlow : nn.Module
{
    private readonly Made[] mades;
    private const double Clamp = 3.0;

    public MaskedAutoregressiveFlow(int dim, int layers, int[] hidden) : base(nameof(MaskedAutoregressiveFlow))
    {
        mades = Enumerable.Range(0, layers).Select(_ => new Made(dim, hidden, 2)).ToArray();
        for (int i = 0; i < mades.Length; i++) register_module($"made{i}", mades[i]);
    }

    /// <summary>log q(x): each MAF layer inverted, then its reversal undone, last block first.</summary>
    public Tensor LogProb(Tensor x)
    {
        long n = x.shape[0], dim = x.shape[1];
        var logDet = zeros(n);
        for (int i = mades.Length - 1; i >= 0; i--)
        {
            var h = mades[i].call(x).view(n, dim, 2);
            var (shift, raw) = (h[.., .., 0], h[.., .., 1]);
            var logScale = (raw / Clamp).atan() * (Clamp * 2 / Math.PI);
            x = ((x - shift) * (-logScale).exp()).flip(1);
            logDet = logDet - logScale.sum(1);
        }
        return StandardNormal.LogProb(x) + logDet;
    }
}

/// <summary>MADE (Germain et al. 2015) as nflows writes it: linear layers whose weights are multiplied by
/// fixed degree masks (F.linear(x, W ⊙ M, b)); inputs of degree 1..D, hidden degrees cycling 1..D−1,
/// output d·k + j for parameter j of feature d, which reads only inputs of smaller degree.</summary>
sealed class Made : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear[] layers;
    private readonly Tensor[] masks;

    public Made(int dim, int[] hidden, int multiplier) : base(nameof(Made))
    {
        var inputs = Enumerable.Range(1, dim).ToArray();
        var degrees = new List<int[]> { inputs };
        foreach (var width in hidden) degrees.Add(Enumerable.Range(0, width).Select(u => u % Math.Max(1, dim - 1) + Math.Min(1, dim - 1)).ToArray());
        degrees.Add(inputs.SelectMany(d => Enumerable.Repeat(d, multiplier)).ToArray());
        layers = new TorchSharp.Modules.Linear[degrees.Count - 1];
        masks = new Tensor[degrees.Count - 1];
        for (int l = 0; l < layers.Length; l++)
        {
            var (from, to) = (degrees[l], degrees[l + 1]);
            bool output = l == layers.Length - 1;
            layers[l] = nn.Linear(from.Length, to.Length);
            masks[l] = tensor(to.SelectMany(o => from.Select(i => (output ? o > i : o >= i) ? 1f : 0f)).ToArray(), new long[] { to.Length, from.Length });
            register_module($"layer{l}", layers[l]);
            register_buffer($"mask{l}", masks[l]);
        }
        using (no_grad()) { layers[^1].weight!.zero_(); layers[^1].bias!.zero_(); }
    }

    public override Tensor forward(Tensor x)
    {
        for (int l = 0; l < layers.Length; l++)
        {
            x = nn.functional.linear(x, layers[l].weight! * masks[l], layers[l].bias);
            if (l < layers.Length - 1) x = x.tanh();
        }
        return x;
    }
}
