using Flows.Bijectors;
using Flows.Continuous;
using Flows.Io;
using Flows.Nn;
using Flows.Tensors;
using CoreBijector = Flows.Bijector;

namespace Flows.CSharp;

/// <summary>
/// One bijector of a flow, for composing flows by hand with
/// <see cref="DensityModel.Compose(IEnumerable{Layer}, BaseDistribution, int, int[], ulong)"/>. Immutable.
/// Direction: forward maps base → data (sampling), inverse maps data → base (density).
/// </summary>
public sealed class Layer
{
    internal Layer(CoreBijector bijector) => Bijector = bijector;

    internal CoreBijector Bijector { get; }

    /// <summary>The layer's name, as saved in model files (a catalogue name).</summary>
    public string Name => Bijector.Name;

    /// <summary>Number of columns the layer maps.</summary>
    public int Dimension => Bijector.Event.Aggregate(1, (a, b) => a * b);

    /// <summary>Number of learnable scalars.</summary>
    public int ParameterCount => Bijector.Params.NumElements;

    /// <summary>The hyperparameters that rebuild the layer (int, double, string, int[] or double[] values).</summary>
    public IReadOnlyDictionary<string, object> Settings => FSharpInterop.SettingsOf(Bijector.Settings);

    /// <summary>The same map run the other way (forward and inverse swap).</summary>
    public Layer Inverted() => new(BijectorModule.invert(Bijector));

    /// <summary>The names of every registered bijector, for <see cref="FromCatalogue"/>.</summary>
    public static IReadOnlyList<string> CatalogueNames => Catalogue.all.Select(e => e.Name).ToArray();

    /// <summary>The catalogue entry <paramref name="name"/> as it creates a fresh layer of
    /// <paramref name="dimension"/> columns (the entry's small default hyperparameters).</summary>
    /// <exception cref="ArgumentException">No such entry (the message lists them).</exception>
    public static Layer FromCatalogue(string name, int dimension, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        Positive(dimension, nameof(dimension));
        return new(Catalogue.find(name).Create.Invoke(new Generator(seed)).Invoke(Dtype.Float32).Invoke(dimension));
    }

    /// <summary>A layer built by its catalogue name from settings, as a model file rebuilds it
    /// (for example <c>FromSettings("maf", Layer.Maf(2).Settings)</c>); parameters start where the
    /// family's builder puts them.</summary>
    /// <exception cref="ArgumentException">Unknown name, or a setting missing or of the wrong kind.</exception>
    public static Layer FromSettings(string name, IReadOnlyDictionary<string, object> settings)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(settings);
        return new(ModelFile.rebuildLayer(Dtype.Float32, name, FSharpInterop.Settings(settings)));
    }

    /// <summary>RealNVP's affine coupling (Dinh et al. 2017) with a soft-clamped log-scale.</summary>
    /// <param name="dimension">Columns (at least 2).</param>
    /// <param name="hidden">Hidden widths of the conditioner (default 64, 64).</param>
    /// <param name="flip">Transform the first half instead of the second.</param>
    /// <param name="contextDimension">Context columns fed to the conditioner (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer AffineCoupling(int dimension, int[]? hidden = null, bool flip = false, int contextDimension = 0, ulong seed = 0) =>
        Coupling(new Generator(seed), dimension, hidden, flip, contextDimension, affine: true);

    /// <summary>NICE's additive coupling (Dinh et al. 2015): volume preserving.</summary>
    /// <inheritdoc cref="AffineCoupling"/>
    public static Layer AdditiveCoupling(int dimension, int[]? hidden = null, bool flip = false, int contextDimension = 0, ulong seed = 0) =>
        Coupling(new Generator(seed), dimension, hidden, flip, contextDimension, affine: false);

    internal static Layer Coupling(Generator generator, int dimension, int[]? hidden, bool flip, int contextDimension, bool affine)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "a coupling layer needs at least 2 columns");
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new Bijectors.Coupling.Spec(dimension, Bijectors.Coupling.Mask.NewHalf(flip), Conditioner.NewMlp(Hidden(hidden), Activation.Relu),
            Bijectors.Coupling.ScaleMap.NewSoftClamp(2.0), affine, contextDimension);
        return new(Bijectors.Coupling.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A masked autoregressive flow layer (MAF, Papamakarios et al. 2017): density in one pass.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the MADE (default 64, 64).</param>
    /// <param name="reversed">Autoregressive order last-to-first instead of first-to-last.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Maf(int dimension, int[]? hidden = null, bool reversed = false, int contextDimension = 0, ulong seed = 0) =>
        Autoregressive(new Generator(seed), dimension, hidden, reversed, contextDimension, inverse: false);

    /// <summary>An inverse autoregressive flow layer (IAF, Kingma et al. 2016): sampling in one pass.</summary>
    /// <inheritdoc cref="Maf"/>
    public static Layer Iaf(int dimension, int[]? hidden = null, bool reversed = false, int contextDimension = 0, ulong seed = 0) =>
        Autoregressive(new Generator(seed), dimension, hidden, reversed, contextDimension, inverse: true);

    internal static Layer Autoregressive(Generator generator, int dimension, int[]? hidden, bool reversed, int contextDimension, bool inverse)
    {
        Positive(dimension, nameof(dimension));
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new Bijectors.Autoregressive.Spec(dimension, Hidden(hidden), Ordering(reversed), Activation.Tanh, 0, 3.0, contextDimension);
        return new(inverse ? Bijectors.Autoregressive.iaf(generator, Dtype.Float32, spec) : Bijectors.Autoregressive.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A rational-quadratic spline coupling layer (RQ-NSF, Durkan et al. 2019).</summary>
    /// <param name="dimension">Columns (at least 2).</param>
    /// <param name="hidden">Hidden widths of the conditioner (default 64, 64).</param>
    /// <param name="bins">Spline bins.</param>
    /// <param name="bound">The splines act on [−bound, bound] and are the identity outside.</param>
    /// <param name="flip">Transform the first half instead of the second.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="spline">Which monotone spline.</param>
    public static Layer SplineCoupling(int dimension, int[]? hidden = null, int bins = 8, double bound = 4.0, bool flip = false, int contextDimension = 0, ulong seed = 0, SplineType spline = SplineType.RationalQuadratic) =>
        SplineCoupling(new Generator(seed), dimension, hidden, bins, bound, flip, contextDimension, spline);

    internal static Layer SplineCoupling(Generator generator, int dimension, int[]? hidden, int bins, double bound, bool flip, int contextDimension, SplineType spline = SplineType.RationalQuadratic)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "a coupling layer needs at least 2 columns");
        Positive(bins, nameof(bins));
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new Bijectors.SplineCoupling.Spec(dimension, Bijectors.Coupling.Mask.NewHalf(flip), Conditioner.NewMlp(Hidden(hidden), Activation.Relu), Kind(spline), bins, bound, contextDimension);
        return new(Bijectors.SplineCoupling.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A rational-quadratic spline autoregressive layer (RQ-NSF (AR), Durkan et al. 2019).</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the MADE (default 64, 64).</param>
    /// <param name="bins">Spline bins.</param>
    /// <param name="bound">The splines act on [−bound, bound] and are the identity outside.</param>
    /// <param name="reversed">Autoregressive order last-to-first.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="spline">Which monotone spline.</param>
    public static Layer SplineAutoregressive(int dimension, int[]? hidden = null, int bins = 8, double bound = 4.0, bool reversed = false, int contextDimension = 0, ulong seed = 0, SplineType spline = SplineType.RationalQuadratic) =>
        SplineAutoregressive(new Generator(seed), dimension, hidden, bins, bound, reversed, contextDimension, spline);

    internal static Layer SplineAutoregressive(Generator generator, int dimension, int[]? hidden, int bins, double bound, bool reversed, int contextDimension, SplineType spline = SplineType.RationalQuadratic)
    {
        Positive(dimension, nameof(dimension));
        Positive(bins, nameof(bins));
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new Bijectors.SplineAutoregressive.Spec(dimension, Hidden(hidden), Ordering(reversed), Activation.Tanh, 0, Kind(spline), bins, bound, contextDimension);
        return new(Bijectors.SplineAutoregressive.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A neural autoregressive flow layer (NAF with deep sigmoidal flows, Huang et al. 2018);
    /// its inverse is iterative.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the MADE (default 64, 64).</param>
    /// <param name="units">Sigmoid units per column.</param>
    /// <param name="reversed">Autoregressive order last-to-first.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Naf(int dimension, int[]? hidden = null, int units = 8, bool reversed = false, int contextDimension = 0, ulong seed = 0) =>
        Naf(new Generator(seed), dimension, hidden, units, reversed, contextDimension);

    internal static Layer Naf(Generator generator, int dimension, int[]? hidden, int units, bool reversed, int contextDimension)
    {
        Positive(dimension, nameof(dimension));
        Positive(units, nameof(units));
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new NeuralAutoregressive.Spec(dimension, Hidden(hidden), Ordering(reversed), Activation.Tanh, units, contextDimension);
        return new(NeuralAutoregressive.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A block neural autoregressive flow layer (B-NAF, De Cao et al. 2019); its inverse is iterative.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden units per column in each hidden layer (default 8, 8).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Bnaf(int dimension, int[]? hidden = null, ulong seed = 0) => Bnaf(new Generator(seed), dimension, hidden);

    internal static Layer Bnaf(Generator generator, int dimension, int[]? hidden)
    {
        Positive(dimension, nameof(dimension));
        return new(BlockNeuralAutoregressive.create(generator, Dtype.Float32, new BlockNeuralAutoregressive.Spec(dimension, Hidden(hidden, 8, 8), 0)));
    }

    /// <summary>A sum-of-squares polynomial flow layer (SOS, Jaini et al. 2019) on a MADE: density in one
    /// pass, sampling by bisection one column at a time.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the MADE (default 64, 64).</param>
    /// <param name="degree">Degree r of each squared polynomial.</param>
    /// <param name="squares">Number K of squared polynomials.</param>
    /// <param name="reversed">Autoregressive order last-to-first.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Sos(int dimension, int[]? hidden = null, int degree = 2, int squares = 3, bool reversed = false, int contextDimension = 0, ulong seed = 0) =>
        Sos(new Generator(seed), dimension, hidden, degree, squares, reversed, contextDimension);

    internal static Layer Sos(Generator generator, int dimension, int[]? hidden, int degree, int squares, bool reversed, int contextDimension)
    {
        Positive(dimension, nameof(dimension));
        NonNegative(degree, nameof(degree));
        Positive(squares, nameof(squares));
        NonNegative(contextDimension, nameof(contextDimension));
        // the paper's polynomial range and floor (as SumOfSquares.sos): standardised data lies well inside ±5
        var spec = new SumOfSquares.Spec(dimension, Hidden(hidden), Ordering(reversed), Activation.Tanh, degree, squares, 5.0, 1e-3, contextDimension);
        return new(SumOfSquares.create(generator, Dtype.Float32, spec));
    }

    /// <summary>An unconstrained monotonic neural network layer (UMNN, Wehenkel &amp; Louppe 2019) on a MADE:
    /// z = β + ∫₀ˣ f, the integral by Clenshaw–Curtis quadrature; sampling by bisection one column at a time.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the MADE (default 64, 64).</param>
    /// <param name="integrandHidden">Hidden widths of the integrand network (default 32, 32).</param>
    /// <param name="embedding">Size of each column's embedding of the earlier columns.</param>
    /// <param name="nodes">Quadrature intervals.</param>
    /// <param name="reversed">Autoregressive order last-to-first.</param>
    /// <param name="contextDimension">Context columns (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Umnn(int dimension, int[]? hidden = null, int[]? integrandHidden = null, int embedding = 8, int nodes = 32, bool reversed = false, int contextDimension = 0, ulong seed = 0) =>
        Umnn(new Generator(seed), dimension, hidden, integrandHidden, embedding, nodes, reversed, contextDimension);

    internal static Layer Umnn(Generator generator, int dimension, int[]? hidden, int[]? integrandHidden, int embedding, int nodes, bool reversed, int contextDimension)
    {
        Positive(dimension, nameof(dimension));
        Positive(embedding, nameof(embedding));
        Positive(nodes, nameof(nodes));
        NonNegative(contextDimension, nameof(contextDimension));
        var spec = new UnconstrainedMonotone.Spec(dimension, Hidden(hidden), Ordering(reversed), Activation.Tanh, embedding,
            Hidden(integrandHidden, 32, 32), Activation.Tanh, Quadrature.ClenshawCurtis, nodes, contextDimension);
        return new(UnconstrainedMonotone.create(generator, Dtype.Float32, spec));
    }

    /// <summary>A planar flow layer (Rezende &amp; Mohamed 2015); its inverse is iterative.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Planar(int dimension, ulong seed = 0) => Planar(new Generator(seed), dimension);

    internal static Layer Planar(Generator generator, int dimension) { Positive(dimension, nameof(dimension)); return new(Bijectors.Planar.create(generator, Dtype.Float32, dimension)); }

    /// <summary>A radial flow layer (Rezende &amp; Mohamed 2015).</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Radial(int dimension, ulong seed = 0) => Radial(new Generator(seed), dimension);

    internal static Layer Radial(Generator generator, int dimension) { Positive(dimension, nameof(dimension)); return new(Bijectors.Radial.create(generator, Dtype.Float32, dimension)); }

    /// <summary>A Householder Sylvester flow layer (van den Berg et al. 2018); its inverse is iterative.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="reflections">Householder reflections building the orthogonal matrix.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Sylvester(int dimension, int reflections = 2, ulong seed = 0) => Sylvester(new Generator(seed), dimension, reflections);

    internal static Layer Sylvester(Generator generator, int dimension, int reflections)
    {
        Positive(dimension, nameof(dimension));
        Positive(reflections, nameof(reflections));
        return new(Bijectors.Sylvester.create(Bijectors.Sylvester.Orthogonal.NewHouseholder(reflections), generator, Dtype.Float32, dimension));
    }

    /// <summary>An invertible residual block (i-ResNet / Residual Flow, Behrmann et al. 2019, Chen et al.
    /// 2019) with spectrally normalised layers and an exact log-det; its inverse is a fixed-point iteration.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths (default 64).</param>
    /// <param name="coefficient">Spectral-norm bound of every linear layer, below 1.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static Layer Residual(int dimension, int[]? hidden = null, double coefficient = 0.9, ulong seed = 0) =>
        Residual(new Generator(seed), dimension, hidden, coefficient);

    internal static Layer Residual(Generator generator, int dimension, int[]? hidden, double coefficient)
    {
        Positive(dimension, nameof(dimension));
        if (!(coefficient > 0 && coefficient < 1)) throw new ArgumentOutOfRangeException(nameof(coefficient), coefficient, "must be in (0, 1)");
        var d = Bijectors.Residual.defaults;
        var options = new Bijectors.Residual.ResidualOptions(Hidden(hidden, 64), coefficient, d.Activation, d.LogDet, d.TrainIterations, d.EvalIterations,
            d.Tolerance, d.MaxIterations, d.NeumannTerms);
        return new(Bijectors.Residual.createWith(options, generator, Dtype.Float32, dimension));
    }

    /// <summary>A continuous normalising flow block (FFJORD, Grathwohl et al. 2019), solved by Dopri5: expensive per
    /// step, for low dimensions. Its densities use the exact trace; a fit can estimate it instead
    /// (<see cref="FitOptions.TraceEstimator"/>).</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="hidden">Hidden widths of the dynamics network (default 32, 32).</param>
    /// <param name="endTime">Integration time T.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="ode">How the ODE is solved and differentiated (null: backpropagation, tolerance 1e-5).</param>
    public static Layer Cnf(int dimension, int[]? hidden = null, double endTime = 1.0, ulong seed = 0, OdeOptions? ode = null) =>
        Cnf(new Generator(seed), dimension, hidden, endTime, ode);

    internal static Layer Cnf(Generator generator, int dimension, int[]? hidden, double endTime, OdeOptions? ode)
    {
        Positive(dimension, nameof(dimension));
        if (!(endTime > 0) || !double.IsFinite(endTime)) throw new ArgumentOutOfRangeException(nameof(endTime), endTime, "must be a finite number above 0");
        ode = CheckedOde(ode);
        var d = Continuous.Cnf.defaults;
        var options = new CnfOptions(Hidden(hidden, 32, 32), endTime, ode.Tolerance, Measure(ode.ErrorNorm), d.Trace, Gradient(ode.Gradient), d.OnSolve, 0);
        return new(Continuous.Cnf.createWith(options, generator, Dtype.Float32, dimension));
    }

    /// <summary>An OT-Flow block (Onken et al. 2021): a CNF whose velocity is −∇Φ of a learnt potential, with a
    /// closed-form Hessian trace, solved by Dopri5.</summary>
    /// <param name="dimension">Columns.</param>
    /// <param name="width">Width of the potential's ResNet.</param>
    /// <param name="rank">Rank of the potential's quadratic term (capped at dimension + 1).</param>
    /// <param name="endTime">Integration time T.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="ode">How the ODE is solved and differentiated (null: backpropagation, tolerance 1e-5; OT-Flow
    /// measures step errors with the max norm only).</param>
    /// <param name="resnetLayers">Layers of the potential's ResNet: an opening layer, then residual blocks (the paper uses 2).</param>
    public static Layer OtFlow(int dimension, int width = 16, int rank = 10, double endTime = 1.0, ulong seed = 0, OdeOptions? ode = null, int resnetLayers = 2) =>
        OtFlow(new Generator(seed), dimension, width, rank, endTime, ode, resnetLayers);

    internal static Layer OtFlow(Generator generator, int dimension, int width, int rank, double endTime, OdeOptions? ode, int resnetLayers = 2)
    {
        Positive(dimension, nameof(dimension));
        Positive(width, nameof(width));
        Positive(rank, nameof(rank));
        if (resnetLayers < 2) throw new ArgumentOutOfRangeException(nameof(resnetLayers), resnetLayers, "must be at least 2 (an opening layer and a residual block)");
        if (!(endTime > 0) || !double.IsFinite(endTime)) throw new ArgumentOutOfRangeException(nameof(endTime), endTime, "must be a finite number above 0");
        ode = CheckedOde(ode);
        if (ode.ErrorNorm != StepErrorNorm.Max) throw new ArgumentException("OT-Flow measures step errors with the max norm only", nameof(ode));
        var options = Continuous.OtFlow.defaults;
        options = new OtFlowOptions(width, resnetLayers, rank, endTime, ode.Tolerance, Gradient(ode.Gradient), 0);
        return new(Continuous.OtFlow.createWith(options, generator, Dtype.Float32, dimension));
    }

    private static OdeOptions CheckedOde(OdeOptions? ode)
    {
        ode ??= new OdeOptions();
        if (!(ode.Tolerance > 0) || !double.IsFinite(ode.Tolerance)) throw new ArgumentOutOfRangeException(nameof(ode), ode.Tolerance, "Tolerance must be a finite number above 0");
        return ode;
    }

    private static CnfGradient Gradient(OdeGradient gradient) => gradient switch
    {
        OdeGradient.Backpropagation => CnfGradient.Backprop,
        OdeGradient.Adjoint => CnfGradient.Adjoint,
        _ => throw new ArgumentOutOfRangeException(nameof(gradient), gradient, "not an OdeGradient"),
    };

    private static Ode.ErrorMeasure Measure(StepErrorNorm norm) => norm switch
    {
        StepErrorNorm.Max => Ode.ErrorMeasure.Max,
        StepErrorNorm.RootMeanSquare => Ode.ErrorMeasure.RootMeanSquare,
        _ => throw new ArgumentOutOfRangeException(nameof(norm), norm, "not a StepErrorNorm"),
    };

    /// <summary>ActNorm (Glow): a per-column affine map initialised from the first batch it sees.</summary>
    /// <param name="dimension">Columns.</param>
    public static Layer ActNorm(int dimension) { Positive(dimension, nameof(dimension)); return new(Bijectors.ActNorm.create(Dtype.Float32, dimension)); }

    /// <summary>An invertible linear map in LU form (Glow's 1×1 convolution on columns), starting at the identity.</summary>
    /// <param name="dimension">Columns.</param>
    public static Layer LuLinear(int dimension) { Positive(dimension, nameof(dimension)); return new(Bijectors.LuLinear.create(Enumerable.Range(0, dimension).ToArray(), Dtype.Float32)); }

    /// <summary>A fixed permutation of the columns: output column i is input column <c>permutation[i]</c>.</summary>
    /// <param name="permutation">A permutation of 0..d−1.</param>
    public static Layer Permutation(int[] permutation)
    {
        ArgumentNullException.ThrowIfNull(permutation);
        return new(Permute.create((int[])permutation.Clone()));
    }

    /// <summary>Reverses the column order.</summary>
    /// <param name="dimension">Columns.</param>
    public static Layer Reverse(int dimension)
    {
        Positive(dimension, nameof(dimension));
        return Permutation(Enumerable.Range(0, dimension).Reverse().ToArray());
    }

    private static Microsoft.FSharp.Collections.FSharpList<int> Hidden(int[]? hidden, params int[] defaults)
    {
        var widths = hidden ?? (defaults.Length > 0 ? defaults : new[] { 64, 64 });
        if (widths.Length == 0 || widths.Any(w => w < 1))
            throw new ArgumentException($"hidden widths must be at least 1 and there must be at least one; got [{string.Join(", ", widths)}]", nameof(hidden));
        return FSharpInterop.List(widths);
    }

    private static Transformers.SplineKind Kind(SplineType spline) => spline switch
    {
        SplineType.RationalQuadratic => Transformers.SplineKind.RationalQuadratic,
        SplineType.Linear => Transformers.SplineKind.NewLinear(Transformers.PiecewiseLinear.Widths.Learnt),
        SplineType.LinearFixedWidths => Transformers.SplineKind.NewLinear(Transformers.PiecewiseLinear.Widths.Fixed),
        SplineType.Quadratic => Transformers.SplineKind.Quadratic,
        SplineType.Cubic => Transformers.SplineKind.Cubic,
        _ => throw new ArgumentOutOfRangeException(nameof(spline), spline, "not a spline type"),
    };

    private static Order Ordering(bool reversed) => reversed ? Nn.Order.Reversed : Nn.Order.Natural;

    private static void Positive(int value, string name)
    {
        if (value < 1) throw new ArgumentOutOfRangeException(name, value, "must be at least 1");
    }

    private static void NonNegative(int value, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, "must be at least 0");
    }
}
