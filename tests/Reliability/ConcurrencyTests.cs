using Flows.CSharp;
using static Flows.Reliability.Tests.ModelFiles;

namespace Flows.Reliability.Tests;

/// <summary>One model scored and sampled from sixteen threads at once gives exactly the numbers of
/// sequential calls: no shared cache, tape, generator or buffer of the tensor library leaks between threads.</summary>
public sealed class ConcurrencyTests
{
    public static TheoryData<string> Recipes => new() { "realnvp", "maf", "spline", "naf", "planar", "residual", "cnf", "loaded" };

    private static DensityModel Create(string recipe)
    {
        var model = recipe switch
        {
            "maf" => DensityModel.CreateMaf(2, layers: 2, hidden: 16, seed: 1),
            "spline" => DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 16, seed: 1),
            "naf" => DensityModel.CreateNaf(2, layers: 2, hidden: 8, units: 4, seed: 1),
            "planar" => DensityModel.CreatePlanar(2, layers: 4, seed: 1),
            "residual" => DensityModel.CreateResidual(2, blocks: 2, hidden: 8, seed: 1),
            "cnf" => DensityModel.CreateCnf(2, hidden: 8, seed: 1),
            _ => DensityModel.CreateRealNvp(2, layers: 2, hidden: 16, seed: 1),
        };
        // a few steps move every parameter away from its initial value
        model = model.Fit(Probe(256, seed: 1), new FitOptions(Steps: recipe == "cnf" ? 2 : 4, BatchSize: 64, LearningRate: 1e-2));
        if (recipe != "loaded") return model;
        using var temp = new TempFolder();
        model.Save(Path.Combine(temp.Root, "model"));
        return DensityModel.Load(Path.Combine(temp.Root, "model"));
    }

    [Theory]
    [MemberData(nameof(Recipes))]
    public void Sixteen_threads_scoring_and_sampling_one_model_match_sequential_calls(string recipe)
    {
        var model = Create(recipe);
        const int threads = 16, rounds = 4;
        var batches = Enumerable.Range(0, threads).Select(t => Probe(33 + t, seed: 100 + t)).ToArray();
        var expectedLogProb = batches.Select(b => model.LogProb(b)).ToArray();
        var expectedSample = Enumerable.Range(0, threads).Select(t => model.Sample(20 + t, seed: (ulong)t)).ToArray();
        using var start = new Barrier(threads);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                for (int r = 0; r < rounds; r++)
                {
                    // half the threads start with sampling, so both kinds of call overlap
                    if ((t + r) % 2 == 0) Check(t, r); else { CheckSample(t, r); Check(t, r); }
                    CheckSample(t, r);
                }
            }
            catch (Exception e)
            {
                failures.Add($"thread {t}: {e}");
            }
        })).ToArray();

        void Check(int t, int r)
        {
            var actual = model.LogProb(batches[t]);
            if (!actual.AsSpan().SequenceEqual(expectedLogProb[t])) failures.Add($"thread {t} round {r}: log-densities differ from the sequential call");
        }

        void CheckSample(int t, int r)
        {
            var actual = model.Sample(20 + t, seed: (ulong)t);
            if (!actual.Cast<float>().SequenceEqual(expectedSample[t].Cast<float>())) failures.Add($"thread {t} round {r}: samples differ from the sequential call");
        }

        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        Assert.Empty(failures);
        Assert.All(expectedLogProb, lp => Assert.All(lp, v => Assert.True(float.IsFinite(v))));
    }
}
