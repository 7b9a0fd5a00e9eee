using Flows.Tensors;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Ready-made flows named after their papers: each stacks layers of one family, alternating
/// the halves or orders between layers so that every column gets transformed.</summary>
public sealed partial class DensityModel
{
    /// <summary>RealNVP (Dinh et al. 2017): affine couplings with alternating halves, starting as the identity.</summary>
    /// <param name="dimension">Columns of the data (at least 2).</param>
    /// <param name="layers">Coupling layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every conditioner.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateRealNvp(int dimension, int layers = 8, int hidden = 64, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Coupling(g, dimension, new[] { hidden, hidden }, i % 2 == 1, contextDimension, affine: true));

    /// <summary>NICE (Dinh et al. 2015): additive couplings with alternating halves (volume preserving
    /// apart from the learnable diagonal-Gaussian base).</summary>
    /// <inheritdoc cref="CreateRealNvp"/>
    public static DensityModel CreateNice(int dimension, int layers = 8, int hidden = 64, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Coupling(g, dimension, new[] { hidden, hidden }, i % 2 == 1, contextDimension, affine: false));

    /// <summary>MAF (Papamakarios et al. 2017): masked autoregressive layers with alternating orders; fast density, sampling one column at a time.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">Autoregressive layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every MADE.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateMaf(int dimension, int layers = 5, int hidden = 64, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Autoregressive(g, dimension, new[] { hidden, hidden }, i % 2 == 1, contextDimension, inverse: false));

    /// <summary>IAF (Kingma et al. 2016): inverse autoregressive layers; fast sampling, density one column at a time.</summary>
    /// <inheritdoc cref="CreateMaf"/>
    public static DensityModel CreateIaf(int dimension, int layers = 5, int hidden = 64, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Autoregressive(g, dimension, new[] { hidden, hidden }, i % 2 == 1, contextDimension, inverse: true));

    /// <summary>The default flow for a table of <paramref name="rows"/> rows (what <c>flows train</c> fits): RQ spline
    /// couplings after fixed random permutations, sized by <see cref="DefaultCapacity.For"/> for the rows a default
    /// fit trains on (the rest are held out), starting as the identity. Fit it with the default <see cref="FitOptions"/>.</summary>
    /// <param name="rows">Rows of the table it will be fitted to.</param>
    /// <param name="columns">Columns of the data.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights and permutations.</param>
    /// <param name="capacity">A capacity to use instead of the one chosen from the rows.</param>
    public static DensityModel CreateForTable(int rows, int columns, int contextDimension = 0, ulong seed = 0, DefaultCapacity? capacity = null)
    {
        if (rows < 2) throw new ArgumentOutOfRangeException(nameof(rows), rows, "a table needs at least 2 rows");
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "must be at least 1");
        if (contextDimension < 0) throw new ArgumentOutOfRangeException(nameof(contextDimension), contextDimension, "must be at least 0");
        var size = capacity ?? DefaultCapacity.For(rows - Flows.Training.DataFit.validationRows(null, rows), columns);
        var flow = Flows.Training.DataFit.defaultFlow(size.ToCore(), columns, contextDimension, seed);
        return new DensityModel(ModelModule.ofFlow(contextDimension, flow));
    }

    /// <summary>Neural spline flow with coupling layers (RQ-NSF (C), Durkan et al. 2019).</summary>
    /// <param name="dimension">Columns of the data (at least 2).</param>
    /// <param name="layers">Spline coupling layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every conditioner.</param>
    /// <param name="bins">Spline bins.</param>
    /// <param name="bound">The splines act on [−bound, bound] (standardised units) and are the identity outside.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateNeuralSpline(int dimension, int layers = 4, int hidden = 64, int bins = 8, double bound = 4.0, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.SplineCoupling(g, dimension, new[] { hidden, hidden }, bins, bound, i % 2 == 1, contextDimension));

    /// <summary>Neural spline flow with autoregressive layers (RQ-NSF (AR), Durkan et al. 2019).</summary>
    /// <inheritdoc cref="CreateNeuralSpline"/>
    public static DensityModel CreateNeuralSplineAutoregressive(int dimension, int layers = 4, int hidden = 64, int bins = 8, double bound = 4.0, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.SplineAutoregressive(g, dimension, new[] { hidden, hidden }, bins, bound, i % 2 == 1, contextDimension));

    /// <summary>NAF (Huang et al. 2018): deep-sigmoidal-flow autoregressive layers with alternating orders.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">NAF layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every MADE.</param>
    /// <param name="units">Sigmoid units per column.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateNaf(int dimension, int layers = 3, int hidden = 64, int units = 8, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Naf(g, dimension, new[] { hidden, hidden }, units, i % 2 == 1, contextDimension));

    /// <summary>B-NAF (De Cao et al. 2019): block neural autoregressive layers separated by column reversals.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">B-NAF layers.</param>
    /// <param name="hidden">Hidden units per column in each of the two hidden layers.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateBnaf(int dimension, int layers = 3, int hidden = 8, ulong seed = 0) =>
        Stack(2 * layers - 1, seed, 0, (g, i) => i % 2 == 0 ? Layer.Bnaf(g, dimension, new[] { hidden, hidden }) : Layer.Reverse(dimension));

    /// <summary>SOS (Jaini et al. 2019, "Sum-of-Squares Polynomial Flow"): sum-of-squares polynomial layers on
    /// MADEs with alternating orders; fast density, sampling by bisection one column at a time.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">SOS layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every MADE.</param>
    /// <param name="degree">Degree r of each squared polynomial.</param>
    /// <param name="squares">Number K of squared polynomials.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateSos(int dimension, int layers = 3, int hidden = 64, int degree = 2, int squares = 3, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Sos(g, dimension, new[] { hidden, hidden }, degree, squares, i % 2 == 1, contextDimension));

    /// <summary>UMNN (Wehenkel &amp; Louppe 2019, "Unconstrained Monotonic Neural Networks"): monotone layers
    /// z = β + ∫₀ˣ f on MADEs with alternating orders; fast density, sampling by bisection one column at a time.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">UMNN layers.</param>
    /// <param name="hidden">Units in each of the two hidden layers of every MADE and of every integrand network.</param>
    /// <param name="embedding">Size of each column's embedding of the earlier columns.</param>
    /// <param name="contextDimension">Context columns for a conditional model (0: unconditional).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateUmnn(int dimension, int layers = 3, int hidden = 32, int embedding = 8, int contextDimension = 0, ulong seed = 0) =>
        Stack(layers, seed, contextDimension, (g, i) => Layer.Umnn(g, dimension, new[] { hidden, hidden }, new[] { hidden, hidden }, embedding, 32, i % 2 == 1, contextDimension));

    /// <summary>Planar flow (Rezende &amp; Mohamed 2015): a stack of planar layers.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">Planar layers.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreatePlanar(int dimension, int layers = 16, ulong seed = 0) =>
        Stack(layers, seed, 0, (g, _) => Layer.Planar(g, dimension));

    /// <summary>Radial flow (Rezende &amp; Mohamed 2015): a stack of radial layers.</summary>
    /// <inheritdoc cref="CreatePlanar"/>
    public static DensityModel CreateRadial(int dimension, int layers = 16, ulong seed = 0) =>
        Stack(layers, seed, 0, (g, _) => Layer.Radial(g, dimension));

    /// <summary>Householder Sylvester flow (van den Berg et al. 2018): a stack of Sylvester layers.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">Sylvester layers.</param>
    /// <param name="reflections">Householder reflections per layer.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateSylvester(int dimension, int layers = 8, int reflections = 2, ulong seed = 0) =>
        Stack(layers, seed, 0, (g, _) => Layer.Sylvester(g, dimension, reflections));

    /// <summary>Residual flow (Behrmann et al. 2019; Chen et al. 2019): invertible residual blocks, each after an ActNorm.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="blocks">Residual blocks.</param>
    /// <param name="hidden">Units in the hidden layer of every block.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateResidual(int dimension, int blocks = 4, int hidden = 64, ulong seed = 0) =>
        Stack(2 * blocks, seed, 0, (g, i) => i % 2 == 0 ? Layer.ActNorm(dimension) : Layer.Residual(g, dimension, new[] { hidden }, 0.9));

    /// <summary>A continuous normalising flow (FFJORD, Grathwohl et al. 2019), fitted by maximum likelihood; densities
    /// use the exact trace (a fit can estimate it: <see cref="FitOptions.TraceEstimator"/>). Costly per step, for a few columns.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="blocks">CNF blocks in sequence.</param>
    /// <param name="hidden">Units in each of the two hidden layers of the dynamics.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="ode">How the ODEs are solved and differentiated (null: backpropagation, tolerance 1e-5).</param>
    public static DensityModel CreateCnf(int dimension, int blocks = 1, int hidden = 32, ulong seed = 0, OdeOptions? ode = null) =>
        Stack(blocks, seed, 0, (g, _) => Layer.Cnf(g, dimension, new[] { hidden, hidden }, 1.0, ode));

    /// <summary>RNODE (Finlay et al. 2020): one CNF block fitted by maximum likelihood plus penalties on the kinetic energy
    /// and the Jacobian's Frobenius norm of its dynamics, which keep them straight and cheap to solve; with a STEER
    /// half-width (Ghosh et al. 2020) each step integrates to a random end time. Saved with the model: refits use them too.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="hidden">Units in each of the two hidden layers of the dynamics.</param>
    /// <param name="regularisation">λ_K, λ_J and STEER's half-width (null: the paper's 0.01 and 0.01, no STEER).</param>
    /// <param name="ode">How the ODE is solved and differentiated (null: backpropagation, tolerance 1e-5).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    public static DensityModel CreateRnode(int dimension, int hidden = 32, RnodeRegularisation? regularisation = null, OdeOptions? ode = null, ulong seed = 0)
    {
        regularisation ??= new RnodeRegularisation();
        NonNegative(regularisation.Kinetic, nameof(regularisation), "Kinetic");
        NonNegative(regularisation.Jacobian, nameof(regularisation), "Jacobian");
        if (regularisation.SteerHalfWidth is double b && !(b > 0 && b < 1))
            throw new ArgumentOutOfRangeException(nameof(regularisation), b, "SteerHalfWidth must lie in (0, T) = (0, 1)");
        var built = CreateCnf(dimension, 1, hidden, seed, ode);
        return built.WithFitting(Fitting.NewRnode(regularisation.Kinetic, regularisation.Jacobian, FSharpInterop.Option(regularisation.SteerHalfWidth)));
    }

    /// <summary>OT-Flow (Onken et al. 2021): a CNF moving along the gradient of a learnt potential, with the exact trace
    /// in closed form. Fitted by maximum likelihood, or with the paper's transport-cost and HJB penalties when
    /// <paramref name="penalties"/> is given (saved with the model: refits use them too).</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="width">Width of the potential's ResNet.</param>
    /// <param name="rank">Rank of the potential's quadratic term (capped at dimension + 1).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="penalties">α_L and α_R; null: none.</param>
    /// <param name="ode">How the ODE is solved and differentiated (null: backpropagation, tolerance 1e-5).</param>
    /// <param name="resnetLayers">Layers of the potential's ResNet (the paper uses 2).</param>
    public static DensityModel CreateOtFlow(int dimension, int width = 16, int rank = 10, ulong seed = 0, OtFlowPenalties? penalties = null, OdeOptions? ode = null,
        int resnetLayers = 2)
    {
        var built = Stack(1, seed, 0, (g, _) => Layer.OtFlow(g, dimension, width, rank, 1.0, ode, resnetLayers));
        if (penalties is null) return built;
        NonNegative(penalties.Transport, nameof(penalties), "Transport");
        NonNegative(penalties.Hjb, nameof(penalties), "Hjb");
        return built.WithFitting(Fitting.NewOtFlow(penalties.Transport, penalties.Hjb));
    }

    private static void NonNegative(double value, string parameter, string field)
    {
        if (!(value >= 0) || !double.IsFinite(value)) throw new ArgumentOutOfRangeException(parameter, value, $"{field} must be a finite number ≥ 0");
    }

    private DensityModel WithFitting(Fitting fitting) =>
        new(ModelModule.withFitting(fitting, model));

    /// <summary>A stack of <paramref name="layers"/> fresh layers of the catalogue entry <paramref name="name"/>
    /// (its default hyperparameters), for any registered bijector; see <see cref="Layer.CatalogueNames"/>.</summary>
    /// <param name="name">A catalogue name.</param>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="layers">Layers in the stack.</param>
    /// <param name="seed">Seed of the initial weights (layer i uses seed + i).</param>
    public static DensityModel CreateFromCatalogue(string name, int dimension, int layers = 4, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        var entry = Catalogue.find(name);
        var contextDimension = Microsoft.FSharp.Core.FSharpOption<int>.get_IsSome(entry.ContextDim) ? entry.ContextDim.Value : 0;
        return Stack(layers, seed, contextDimension, (_, i) => Layer.FromCatalogue(name, dimension, seed + (ulong)i));
    }

    private static DensityModel Stack(int layers, ulong seed, int contextDimension, Func<Generator, int, Layer> layer)
    {
        if (layers < 1) throw new ArgumentOutOfRangeException(nameof(layers), layers, "must be at least 1");
        var generator = new Generator(seed);
        return Compose(Enumerable.Range(0, layers).Select(i => layer(generator, i)).ToArray(), BaseDistribution.DiagonalNormal, contextDimension);
    }
}
