using Flows.Bijectors;
using Flows.Distributions;
using Flows.Nn;
using Flows.Tensors;
using Flows.Training;

namespace Flows.CSharp;

/// <summary>
/// A density model on rows of <see cref="Dimension"/> numbers: a RealNVP normalising flow (affine
/// couplings with alternating halves and soft-clamped scales on a learnable diagonal Gaussian).
/// Immutable: <see cref="Fit"/> returns a new model.
/// </summary>
public sealed class DensityModel
{
    private readonly Flow flow;

    private DensityModel(Flow flow, int dimension)
    {
        this.flow = flow;
        Dimension = dimension;
    }

    /// <summary>Number of columns of the data this model describes.</summary>
    public int Dimension { get; }

    /// <summary>An untrained RealNVP (the identity map on its base distribution).</summary>
    /// <param name="dimension">Columns of the data (at least 2).</param>
    /// <param name="layers">Coupling layers (at least 1).</param>
    /// <param name="hidden">Units in each of the two hidden layers of every conditioner.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateRealNvp(int dimension, int layers = 8, int hidden = 64, ulong seed = 0)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "a coupling flow needs at least 2 columns");
        if (layers < 1) throw new ArgumentOutOfRangeException(nameof(layers), layers, "must be at least 1");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "must be at least 1");
        var generator = new Generator(seed);
        var bijectors = Enumerable.Range(0, layers).Select(i =>
            Coupling.realNvp(generator, Dtype.Float32, dimension, FSharpInterop.List(hidden, hidden), Coupling.Mask.NewHalf(i % 2 == 1)));
        var baseDistribution = DistributionModule.diagonalNormal(new[] { dimension }, Dtype.Float32);
        return new DensityModel(FlowModule.create(baseDistribution, FSharpInterop.List(bijectors.ToArray())), dimension);
    }

    /// <summary>Fits the model to the rows of <paramref name="data"/> by maximum likelihood.</summary>
    /// <exception cref="ArgumentException">Empty data, the wrong number of columns, or a value that is not finite.</exception>
    /// <exception cref="InvalidOperationException">Training diverged (the message says how).</exception>
    public DensityModel Fit(float[,] data, FitOptions? options = null)
    {
        options ??= new FitOptions();
        var rows = ArrayConversions.ToRows(data, Dimension, nameof(data));
        var trainOptions = FSharpInterop.TrainOptions(options);
        var outcome = Train.fit(trainOptions, Objective.NewForwardKl(DataSource.NewDataset(rows)), flow);
        if (outcome is FitOutcome.Diverged diverged)
            throw new InvalidOperationException($"training diverged: {diverged.Item2.Message}");
        return new DensityModel(((FitOutcome.Converged)outcome).Item1, Dimension);
    }

    /// <summary>log p(x) of every row, in nats.</summary>
    public float[] LogProb(float[,] data)
    {
        var rows = ArrayConversions.ToRows(data, Dimension, nameof(data));
        return FlowModule.logProb(ContextModule.none, rows, flow).toArray32();
    }

    /// <summary><paramref name="count"/> rows drawn from the model; the same seed gives the same rows.</summary>
    public float[,] Sample(int count, ulong seed = 0)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be at least 1");
        return ArrayConversions.ToMatrix(FlowModule.sample(ContextModule.none, new Generator(seed), count, flow));
    }
}
