using Flows.CSharp;

namespace Flows.Cli;

/// <summary>The flow families 'flows train --flow' offers, each a façade recipe.</summary>
internal static class FlowKinds
{
    private static readonly Dictionary<string, Func<int, int, int, int, ulong, DensityModel>> Recipes = new()
    {
        // (dimension, layers, hidden, contextDimension, seed)
        ["nsf"] = (d, l, h, c, s) => DensityModel.CreateNeuralSpline(d, l, h, contextDimension: c, seed: s),
        ["nsf-ar"] = (d, l, h, c, s) => DensityModel.CreateNeuralSplineAutoregressive(d, l, h, contextDimension: c, seed: s),
        ["realnvp"] = (d, l, h, c, s) => DensityModel.CreateRealNvp(d, l, h, c, s),
        ["nice"] = (d, l, h, c, s) => DensityModel.CreateNice(d, l, h, c, s),
        ["maf"] = (d, l, h, c, s) => DensityModel.CreateMaf(d, l, h, c, s),
        ["naf"] = (d, l, h, c, s) => DensityModel.CreateNaf(d, l, h, contextDimension: c, seed: s),
        ["bnaf"] = (d, l, h, c, s) => Unconditional("bnaf", c, () => DensityModel.CreateBnaf(d, l, seed: s)),
        ["residual"] = (d, l, h, c, s) => Unconditional("residual", c, () => DensityModel.CreateResidual(d, l, h, s)),
        ["cnf"] = (d, l, h, c, s) => Unconditional("cnf", c, () => DensityModel.CreateCnf(d, l, h, s)),
        ["sos"] = (d, l, h, c, s) => DensityModel.CreateSos(d, l, h, contextDimension: c, seed: s),
        ["umnn"] = (d, l, h, c, s) => DensityModel.CreateUmnn(d, l, h, contextDimension: c, seed: s),
        // one CNF each: --layers does not apply (for ot-flow --hidden is the potential's width)
        ["flow-matching"] = (d, l, h, c, s) => Unconditional("flow-matching", c, () => DensityModel.CreateFlowMatching(d, h, seed: s)),
        ["ot-flow"] = (d, l, h, c, s) => Unconditional("ot-flow", c, () => DensityModel.CreateOtFlow(d, h, seed: s)),
    };

    /// <summary>The names <c>--flow</c> accepts.</summary>
    public static string[] Names => Recipes.Keys.ToArray();

    /// <summary>An untrained model of the named family for a table of <paramref name="rows"/> rows; layers and width
    /// not given are chosen from the rows (for nsf: the library's default table flow).</summary>
    public static DensityModel Create(string name, int rows, int dimension, int? layers, int? hidden, int contextDimension, ulong seed)
    {
        if (name == "nsf" && layers is null && hidden is null)
            return DensityModel.CreateForTable(rows, dimension, contextDimension, seed);
        var capacity = DefaultCapacity.For(Math.Max(1, rows * 4 / 5), dimension);
        return Recipes[name](dimension, layers ?? capacity.Layers, hidden ?? capacity.Hidden, contextDimension, seed);
    }

    private static DensityModel Unconditional(string name, int contextDimension, Func<DensityModel> create) =>
        contextDimension == 0 ? create() : throw new BadInputException($"--flow {name} has no conditional form; use nsf, nsf-ar, realnvp, nice, maf, naf, sos or umnn with --context");
}
