using Flows.Tensors;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using CoreBijector = Flows.Bijector;

namespace Flows.CSharp;

/// <summary>
/// A bijector written in C#: its name, its learnable parameters (one value per column each, stored
/// unconstrained) and its two directions with their log-determinants. <see cref="Create"/> gives layers
/// that compose, train, save and load with the library's once <see cref="Register"/> has run, and that
/// <see cref="BijectorLaws.Check"/> checks. Direction: forward maps base → data, inverse data → base.
/// </summary>
public sealed class CustomBijector
{
    private readonly string[] parameterNames;
    private readonly CustomMap forward;
    private readonly CustomMap inverse;

    /// <summary>Defines a bijector on the real line with a closed-form inverse.</summary>
    /// <param name="name">The name model files save it under; not a library bijector's name.</param>
    /// <param name="parameterNames">The learnable parameters, each one value per column.</param>
    /// <param name="forward">Base → data, with log|det J| of the forward map.</param>
    /// <param name="inverse">Data → base, with log|det J| of the inverse map.</param>
    /// <exception cref="ArgumentException">An empty name, or a parameter name that is empty or repeated.</exception>
    public CustomBijector(string name, IEnumerable<string> parameterNames, CustomMap forward, CustomMap inverse)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(parameterNames);
        this.parameterNames = parameterNames.ToArray();
        if (this.parameterNames.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("parameter names must not be empty", nameof(parameterNames));
        if (this.parameterNames.Distinct().Count() != this.parameterNames.Length)
            throw new ArgumentException($"parameter names repeat: {string.Join(", ", this.parameterNames)}", nameof(parameterNames));
        Name = name;
        this.forward = forward ?? throw new ArgumentNullException(nameof(forward));
        this.inverse = inverse ?? throw new ArgumentNullException(nameof(inverse));
    }

    /// <summary>The name layers of this bijector carry and model files save.</summary>
    public string Name { get; }

    /// <summary>A layer of <paramref name="dimension"/> columns; every parameter starts at 0, or with
    /// <paramref name="spread"/> &gt; 0 at N(0, spread²) draws from <paramref name="seed"/> (to check the
    /// laws away from the starting point).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension below 1 or a negative spread.</exception>
    public Layer Create(int dimension, double spread = 0, ulong seed = 0)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "must be at least 1");
        if (!(spread >= 0) || double.IsInfinity(spread)) throw new ArgumentOutOfRangeException(nameof(spread), spread, "must be a finite number of at least 0");
        var bijector = Build(Dtype.Float32, dimension);
        var generator = new Generator(seed);
        return new(spread == 0 ? bijector : EntryModule.perturb(generator, spread, bijector));
    }

    /// <summary>Makes model files holding this bijector loadable (<see cref="DensityModel.Load"/>); saving
    /// needs it too. Registering a name again replaces the earlier definition.</summary>
    /// <exception cref="ArgumentException">The name is a library bijector's.</exception>
    public void Register() =>
        Catalogue.register(CodecModule.exact(Name, FSharpInterop.Function<Dtype, FSharpMap<string, Setting>, CoreBijector>(
            (dtype, settings) => Build(dtype, SettingsModule.@int("dim", settings)))));

    private CoreBijector Build(Dtype dtype, int dimension)
    {
        var shape = new[] { dimension };
        // every parameter starts at 0, stored in the dtype asked for (float64 when the law suite rebuilds it)
        Tensor Zeros() => dtype.Equals(Dtype.Float64) ? TensorOf.doubles(new double[dimension], shape) : TensorOf.floats(new float[dimension], shape);
        var parameters = FSharpInterop.List(parameterNames.Select(n => Tuple.Create(n, Zeros())).ToArray());
        return BijectorModule.create(Name, FSharpInterop.Settings(new Dictionary<string, object> { ["dim"] = dimension }), new[] { dimension },
            Params.ofList(parameters), Direction(forward, "forward"), Direction(inverse, "inverse"));
    }

    // a C# direction as the core's map: parameters and rows in, rows and per-row log-dets out
    private FSharpFunc<Params, FSharpFunc<Context, FSharpFunc<Tensor, Tuple<Tensor, Tensor>>>> Direction(CustomMap map, string direction) =>
        FSharpInterop.Function<Params, Context, Tensor, Tensor, Tensor>((p, _, x) =>
        {
            var result = map(new CustomParameters(p), new Rows(x)) ?? throw new InvalidOperationException($"{Name}: the {direction} map returned null");
            var output = result.Output?.Tensor ?? throw new InvalidOperationException($"{Name}: the {direction} map returned no output");
            var logDet = result.LogDeterminant?.Tensor ?? throw new InvalidOperationException($"{Name}: the {direction} map returned no log-determinant");
            if (!output.shape.SequenceEqual(x.shape))
                throw new InvalidOperationException($"{Name}: the {direction} map returned rows of shape [{string.Join(", ", output.shape)}] for input [{string.Join(", ", x.shape)}]");
            return (output, PerRow(logDet, x, direction));
        });

    // per-row totals: a [rows] vector as it is, a [rows or 1; columns] table summed over each row
    private Tensor PerRow(Tensor logDet, Tensor x, string direction)
    {
        int rows = x.shape[0], columns = x.shape[1];
        if (logDet.dim == 1 && logDet.shape[0] == rows) return logDet;
        if (logDet.dim == 2 && (logDet.shape[0] == rows || logDet.shape[0] == 1) && logDet.shape[1] == columns)
            return logDet.expand(new[] { rows, columns }).sum(1, null);
        throw new InvalidOperationException(
            $"{Name}: the {direction} log-determinant has shape [{string.Join(", ", logDet.shape)}]; expected [{rows}] (per row) or [{rows}, {columns}] / [1, {columns}] (per element)");
    }
}
