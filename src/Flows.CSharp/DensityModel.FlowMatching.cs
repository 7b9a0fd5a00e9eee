using Flows.Continuous;
using Flows.Data;
using Flows.Tensors;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Flow matching: a CNF trained by regressing its velocity field, scored and sampled by integration.</summary>
public sealed partial class DensityModel
{
    /// <summary>A flow-matching model (Lipman et al. 2023, "Flow Matching for Generative Modeling"): one CNF
    /// from a standard normal over t ∈ [0, 1]. <see cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/>
    /// trains it by conditional flow matching on straight paths (cheap steps, no ODE solve);
    /// <see cref="LogProb(float[,], float[,])"/> and <see cref="Sample(int, ulong?)"/> integrate the field with Dopri5.</summary>
    /// <param name="dimension">Columns of the data.</param>
    /// <param name="hidden">Units in each hidden layer of the velocity field.</param>
    /// <param name="sigmaMin">Width σ_min of each path's end around its data point, in [0, 1).</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="hiddenLayers">Hidden layers of the velocity field, each of <paramref name="hidden"/> units.</param>
    public static DensityModel CreateFlowMatching(int dimension, int hidden = 64, double sigmaMin = 1e-4, ulong seed = 0, int hiddenLayers = 2)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "must be at least 1");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "must be at least 1");
        if (hiddenLayers < 1) throw new ArgumentOutOfRangeException(nameof(hiddenLayers), hiddenLayers, "must be at least 1");
        if (!(sigmaMin >= 0 && sigmaMin < 1)) throw new ArgumentOutOfRangeException(nameof(sigmaMin), sigmaMin, "must be in [0, 1)");
        // float32 solves use at least Atol 1e-6 whatever is asked; 1e-5 keeps scoring affordable, as for Cnf
        var options = Cnf.defaults;
        options = new CnfOptions(FSharpInterop.List(Enumerable.Repeat(hidden, hiddenLayers).ToArray()), 1.0, 1e-5, options.ErrorMeasure, options.Trace, options.Gradient, options.OnSolve, 0);
        var flow = FlowMatching.create(options, new Generator(seed), Dtype.Float32, dimension);
        return new DensityModel(new CoreModel(flow, 0, FSharpInterop.Option<Standardisation>(null), FSharpInterop.Option<Standardisation>(null), Fitting.NewFlowMatching(sigmaMin), FSharpInterop.List<string>()));
    }
}
