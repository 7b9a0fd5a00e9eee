using Flows.CSharp;

namespace Flows.Cli;

/// <summary>The flow families 'flows train --flow' offers, each a façade recipe. Every family uses both
/// <c>--layers</c> and <c>--hidden</c>, in its own sense (see <see cref="LayersMeaning"/>, <see cref="HiddenMeaning"/>).</summary>
internal static class FlowKinds
{
    // (dimension, layers, hidden, contextDimension, seed, what the user gave): layers and hidden are resolved
    // from the table's size; the families whose options mean something else take the given values or their own defaults
    private delegate DensityModel Recipe(int dimension, int layers, int hidden, int contextDimension, ulong seed, (int? Layers, int? Hidden) given);

    private static readonly Dictionary<string, Recipe> Recipes = new()
    {
        ["nsf"] = (d, l, h, c, s, _) => DensityModel.CreateNeuralSpline(d, l, h, contextDimension: c, seed: s),
        ["nsf-ar"] = (d, l, h, c, s, _) => DensityModel.CreateNeuralSplineAutoregressive(d, l, h, contextDimension: c, seed: s),
        ["realnvp"] = (d, l, h, c, s, _) => DensityModel.CreateRealNvp(d, l, h, c, s),
        ["nice"] = (d, l, h, c, s, _) => DensityModel.CreateNice(d, l, h, c, s),
        ["maf"] = (d, l, h, c, s, _) => DensityModel.CreateMaf(d, l, h, c, s),
        ["naf"] = (d, l, h, c, s, _) => DensityModel.CreateNaf(d, l, h, contextDimension: c, seed: s),
        // B-NAF's width is per column (a layer has hidden × dimension units): the table default would be far too wide
        ["bnaf"] = (d, l, _, c, s, given) => Unconditional("bnaf", c, () =>
            given.Hidden is int h ? DensityModel.CreateBnaf(d, l, h, s) : DensityModel.CreateBnaf(d, l, seed: s)),
        ["residual"] = (d, l, h, c, s, _) => Unconditional("residual", c, () => DensityModel.CreateResidual(d, l, h, s)),
        ["cnf"] = (d, l, h, c, s, _) => Unconditional("cnf", c, () => DensityModel.CreateCnf(d, l, h, s)),
        ["sos"] = (d, l, h, c, s, _) => DensityModel.CreateSos(d, l, h, contextDimension: c, seed: s),
        ["umnn"] = (d, l, h, c, s, _) => DensityModel.CreateUmnn(d, l, h, contextDimension: c, seed: s),
        // one CNF each: --layers is the depth of the network inside it, the paper's when not given
        ["flow-matching"] = (d, _, h, c, s, given) => Unconditional("flow-matching", c, () =>
            given.Layers is int l ? DensityModel.CreateFlowMatching(d, h, seed: s, hiddenLayers: l) : DensityModel.CreateFlowMatching(d, h, seed: s)),
        ["ot-flow"] = (d, _, h, c, s, given) => Unconditional("ot-flow", c, () => given.Layers switch
        {
            null => DensityModel.CreateOtFlow(d, h, seed: s),
            < 2 => throw new BadInputException($"--layers {given.Layers} for --flow ot-flow: its potential's ResNet needs at least 2 layers (an opening layer and a residual block)"),
            int l => DensityModel.CreateOtFlow(d, h, seed: s, resnetLayers: l),
        }),
    };

    /// <summary>The names <c>--flow</c> accepts.</summary>
    public static string[] Names => Recipes.Keys.ToArray();

    /// <summary>What <c>--layers</c> counts, family by family.</summary>
    public const string LayersMeaning = "number of flow layers (cnf: CNF blocks; flow-matching: hidden layers of the velocity field, default 2; " +
        "ot-flow: layers of the potential's ResNet, at least 2, default 2); default: from the training rows, clamp(round(log2(rows / 50)), 2, 8)";

    /// <summary>What <c>--hidden</c> sizes, family by family.</summary>
    public const string HiddenMeaning = "units per hidden layer of each conditioner (bnaf: units per column, default 8; " +
        "ot-flow: the potential's width); default: clamp(sqrt(rows), 16, 256)";

    /// <summary>An untrained model of the named family for a table of <paramref name="rows"/> rows; layers and width
    /// not given are chosen from the rows (for nsf: the library's default table flow).</summary>
    public static DensityModel Create(string name, int rows, int dimension, int? layers, int? hidden, int contextDimension, ulong seed)
    {
        if (name == "nsf" && layers is null && hidden is null)
            return DensityModel.CreateForTable(rows, dimension, contextDimension, seed);
        var capacity = DefaultCapacity.For(Math.Max(1, rows * 4 / 5), dimension);
        return Recipes[name](dimension, layers ?? capacity.Layers, hidden ?? capacity.Hidden, contextDimension, seed, (layers, hidden));
    }

    private static DensityModel Unconditional(string name, int contextDimension, Func<DensityModel> create) =>
        contextDimension == 0 ? create() : throw new BadInputException($"--flow {name} has no conditional form; use nsf, nsf-ar, realnvp, nice, maf, naf, sos or umnn with --context");
}
