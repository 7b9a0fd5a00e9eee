using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The continuous flows' options from C#: trace estimators, adjoint gradients, RNODE/STEER and
/// OT-Flow penalties, each shown to change what a fit does.</summary>
public class ContinuousOptionsTests
{
    // Raw rows of N(0, 3²) in each column: a plain CNF has to stretch its base by 3 to fit them.
    private static float[,] Wide(int n, int seed)
    {
        var random = new Random(seed);
        var rows = new float[n, 2];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++)
            rows[i, j] = (float)(3 * Data.Normal(random));
        return rows;
    }

    // Plain fits: no standardisation, no Gaussian under the flow, no held-out rows, so the flow alone does the work.
    private static readonly FitOptions Plain = new(Steps: 40, BatchSize: 128, LearningRate: 0.02, ValidationFraction: 0,
        Standardise: false, GaussianFloor: false, Seed: 3);

    // The mean distance the flow's map moves base points: the learnable base can take up a plain scale change, so
    // how far the dynamics move points is what a penalty on them shows in.
    private static double Displacement(DensityModel model)
    {
        var random = new Random(11);
        var z = new float[2000, 2];
        for (int i = 0; i < 2000; i++) { z[i, 0] = (float)Data.Normal(random); z[i, 1] = (float)Data.Normal(random); }
        var x = model.Forward(z).Rows;
        double sum = 0;
        for (int i = 0; i < 2000; i++) sum += Math.Sqrt(Math.Pow(x[i, 0] - z[i, 0], 2) + Math.Pow(x[i, 1] - z[i, 1], 2));
        return sum / 2000;
    }

    [Fact]
    public void A_large_kinetic_penalty_keeps_RNODE_near_the_identity_where_a_plain_CNF_moves_points()
    {
        var rows = Wide(512, 1);
        var plain = DensityModel.CreateCnf(2, hidden: 16, seed: 2).Fit(rows, Plain);
        var held = DensityModel.CreateRnode(2, hidden: 16, new RnodeRegularisation(Kinetic: 1000, Jacobian: 0), seed: 2).Fit(rows, Plain);
        Assert.Equal(FitMethod.Rnode, held.FitMethod);
        Assert.True(Displacement(held) < 0.2 * Displacement(plain), $"RNODE moves points by {Displacement(held)}, the plain CNF by {Displacement(plain)}");
    }

    [Fact]
    public void STEER_and_a_small_penalty_still_fit_and_the_fitting_survives_save_and_load()
    {
        var rows = Wide(512, 4);
        var model = DensityModel.CreateRnode(2, hidden: 16, new RnodeRegularisation(SteerHalfWidth: 0.5), seed: 2).Fit(rows, Plain);
        // the untrained model's NLL is about 10.8 nats; N(0, 9I)'s own is 4.04
        double nll = -model.LogProb(rows).Average();
        Assert.True(nll < 6.0, $"NLL {nll} after the fit");
        var folder = Path.Combine(Path.GetTempPath(), $"flows-rnode-{Guid.NewGuid():N}");
        try
        {
            model.Save(folder);
            var loaded = DensityModel.Load(folder);
            Assert.Equal(FitMethod.Rnode, loaded.FitMethod);
            Assert.Equal(model.LogProb(rows), loaded.LogProb(rows));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void A_large_transport_penalty_keeps_OT_Flow_near_the_identity_where_plain_OT_Flow_moves_points()
    {
        var rows = Wide(512, 5);
        var plain = DensityModel.CreateOtFlow(2, width: 8, rank: 2, seed: 1).Fit(rows, Plain);
        var held = DensityModel.CreateOtFlow(2, width: 8, rank: 2, seed: 1, penalties: new OtFlowPenalties(Transport: 1000, Hjb: 0)).Fit(rows, Plain);
        Assert.Equal(FitMethod.MaximumLikelihood, plain.FitMethod);
        Assert.Equal(FitMethod.OtFlow, held.FitMethod);
        Assert.True(Displacement(held) < 0.2 * Displacement(plain), $"penalised OT-Flow moves points by {Displacement(held)}, plain OT-Flow by {Displacement(plain)}");
    }

    [Fact]
    public void Hutchinson_training_fits_about_as_well_and_the_fitted_model_scores_with_the_exact_trace()
    {
        var rows = Wide(512, 6);
        var exact = DensityModel.CreateCnf(2, hidden: 16, seed: 2).Fit(rows, Plain);
        var estimated = DensityModel.CreateCnf(2, hidden: 16, seed: 2).Fit(rows, Plain with { TraceEstimator = TraceEstimator.HutchinsonRademacher });
        double Nll(DensityModel m) => -m.LogProb(rows).Average();
        Assert.True(Math.Abs(Nll(exact) - Nll(estimated)) < 0.1, $"exact-trace fit {Nll(exact)}, Hutchinson fit {Nll(estimated)}");
        Assert.NotEqual(Nll(exact), Nll(estimated)); // the probes changed the steps
        // a Hutchinson layer would give a different log-density on every call
        Assert.Equal(estimated.LogProb(rows), estimated.LogProb(rows));
        Assert.Equal("exact", estimated.Layers[0].Settings["trace"]);
    }

    [Fact]
    public void The_adjoint_method_trains_as_backpropagation_does_to_within_the_solver_tolerance()
    {
        var rows = Wide(256, 7);
        var options = Plain with { Steps = 5 };
        var tight = new OdeOptions(Tolerance: 1e-6);
        var backprop = DensityModel.CreateCnf(2, hidden: 8, seed: 2, ode: tight).Fit(rows, options);
        var adjoint = DensityModel.CreateCnf(2, hidden: 8, seed: 2, ode: tight with { Gradient = OdeGradient.Adjoint }).Fit(rows, options);
        Assert.Equal("adjoint", adjoint.Layers[0].Settings["gradient"]);
        var a = backprop.LogProb(rows);
        var b = adjoint.LogProb(rows);
        var untrained = DensityModel.CreateCnf(2, hidden: 8, seed: 2, ode: tight).LogProb(rows);
        double gap = a.Zip(b, (x, y) => Math.Abs(x - y)).Max(), moved = a.Zip(untrained, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(gap < 0.02 * moved, $"adjoint differs from backprop by {gap}; training moved log-densities by {moved}");
    }

    [Fact]
    public void Bad_continuous_options_are_refused_with_the_argument_named()
    {
        Assert.Equal("options", Assert.Throws<ArgumentException>(() =>
            DensityModel.CreateRealNvp(2, layers: 2).Fit(Wide(64, 1), Plain with { TraceEstimator = TraceEstimator.HutchinsonGaussian })).ParamName);
        Assert.Equal("regularisation", Assert.Throws<ArgumentOutOfRangeException>(() =>
            DensityModel.CreateRnode(2, regularisation: new RnodeRegularisation(Kinetic: -1))).ParamName);
        Assert.Equal("regularisation", Assert.Throws<ArgumentOutOfRangeException>(() =>
            DensityModel.CreateRnode(2, regularisation: new RnodeRegularisation(SteerHalfWidth: 1.5))).ParamName);
        Assert.Equal("penalties", Assert.Throws<ArgumentOutOfRangeException>(() =>
            DensityModel.CreateOtFlow(2, penalties: new OtFlowPenalties(Hjb: double.NaN))).ParamName);
        Assert.Equal("ode", Assert.Throws<ArgumentOutOfRangeException>(() => Layer.Cnf(2, ode: new OdeOptions(Tolerance: 0))).ParamName);
        Assert.Equal("ode", Assert.Throws<ArgumentException>(() => Layer.OtFlow(2, ode: new OdeOptions(ErrorNorm: StepErrorNorm.RootMeanSquare))).ParamName);
    }
}
