using CoreCapacity = Flows.Training.TableCapacity;

namespace Flows.CSharp;

/// <summary>The size of the default flow for a table, chosen from its training rows (the README lists the rules):
/// small, strongly regularised flows for a few hundred rows, deep and wide ones for a hundred thousand.</summary>
/// <param name="Layers">Spline coupling layers.</param>
/// <param name="Hidden">Units in each hidden layer of every conditioner.</param>
/// <param name="Bins">Spline bins.</param>
/// <param name="TailBound">The splines act on [−bound, bound] of whitened columns.</param>
/// <param name="WeightDecay">AdamW's decoupled weight decay.</param>
/// <param name="BatchSize">Rows per step.</param>
public sealed record DefaultCapacity(int Layers, int Hidden, int Bins, double TailBound, double WeightDecay, int BatchSize)
{
    /// <summary>The capacity for <paramref name="trainingRows"/> rows of <paramref name="columns"/> columns.</summary>
    public static DefaultCapacity For(int trainingRows, int columns)
    {
        if (trainingRows < 1) throw new ArgumentOutOfRangeException(nameof(trainingRows), trainingRows, "must be at least 1");
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "must be at least 1");
        var c = Flows.Training.TableCapacityModule.forTable(trainingRows, columns);
        return new DefaultCapacity(c.Layers, c.Hidden, c.Bins, c.TailBound, c.WeightDecay, c.BatchSize);
    }

    internal CoreCapacity ToCore() => new(Layers, Hidden, Bins, TailBound, WeightDecay, BatchSize);
}
