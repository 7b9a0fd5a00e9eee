using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Column names: a model fitted on a table with a header can give its samples the same header.</summary>
public sealed partial class DensityModel
{
    /// <summary>The data columns' names, one per column, saved with the model; empty when none were given.</summary>
    public IReadOnlyList<string> ColumnNames => model.ColumnNames.ToArray();

    /// <summary>The same model with its columns named (for example from a CSV header); fitting keeps the names.</summary>
    /// <param name="names">One name per column, <see cref="Dimension"/> in all; an empty list removes the names.</param>
    /// <exception cref="ArgumentException">A name is null, or the number of names is neither 0 nor <see cref="Dimension"/>.</exception>
    public DensityModel WithColumnNames(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.Count != 0 && names.Count != Dimension)
            throw new ArgumentException($"{names.Count} names for a model of {Dimension} columns; give one per column, or none", nameof(names));
        for (int i = 0; i < names.Count; i++)
            if (names[i] is null) throw new ArgumentException($"name {i} is null", nameof(names));
        var named = new CoreModel(model.Flow, model.ContextDim, model.Standardisation, model.ContextStandardisation, model.Fitting, FSharpInterop.List(names.ToArray()));
        return new DensityModel(named, LastFit);
    }
}
