// normflows' two-moons configuration in TorchSharp, written as PyTorch would be: affine couplings with MLP
// [1, h, h, 2] conditioners (last layer zero), swap permutations, a learnable diagonal Gaussian base, Adam 5e-4
// with weight decay 1e-5, a dispose scope per step. Prints `name value unit` lines as bench/Bench does.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

GlibcxxShim.Load();
int Argument(string name, int fallback) =>
    Array.IndexOf(args, $"--{name}") is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
int blocks = Argument("blocks", 2), hidden = Argument("hidden", 64), batch = Argument("batch", 512), steps = Argument("steps", 1000);
int threads = Argument("threads", Environment.ProcessorCount);
torch.set_num_threads(threads);
torch.manual_seed(1);

var flow = new TwoMoonsFlow(blocks, hidden);
var optimiser = optim.Adam(flow.parameters(), lr: 5e-4, weight_decay: 1e-5);
var fixedBatch = TwoMoonsFlow.Moons(batch);

double StepsPerSecond(bool sampleEachStep)
{
    void Step()
    {
        using var scope = NewDisposeScope();
        var x = sampleEachStep ? TwoMoonsFlow.Moons(batch) : fixedBatch;
        optimiser.zero_grad();
        var loss = -flow.LogProb(x).mean();
        loss.backward();
        optimiser.step();
    }
    for (int i = 0; i < 100; i++) Step();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < steps; i++) Step();
    return steps / clock.Elapsed.TotalSeconds;
}

var name = $"two_moons.{blocks}x{hidden}.batch{batch}.threads{threads}";
string Show(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
Console.WriteLine($"{name}.torchsharp.all_in {Show(StepsPerSecond(true))} it/s");
Console.WriteLine($"{name}.torchsharp.fixed_batch {Show(StepsPerSecond(false))} it/s");

/// <summary>RealNVP for two columns: each block an affine coupling of one column on the other, then a swap.</summary>
sealed class TwoMoonsFlow : nn.Module
{
    private readonly nn.Module<Tensor, Tensor>[] nets;
    private readonly TorchSharp.Modules.Parameter loc, logScale;

    public TwoMoonsFlow(int blocks, int hidden) : base(nameof(TwoMoonsFlow))
    {
        nets = Enumerable.Range(0, blocks).Select(_ =>
        {
            var last = nn.Linear(hidden, 2);
            using (no_grad()) { last.weight!.zero_(); last.bias!.zero_(); }
            return (nn.Module<Tensor, Tensor>)nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), last);
        }).ToArray();
        loc = nn.Parameter(zeros(1, 2));
        logScale = nn.Parameter(zeros(1, 2));
        for (int i = 0; i < nets.Length; i++) register_module($"net{i}", nets[i]);
        register_parameter("loc", loc);
        register_parameter("log_scale", logScale);
    }

    /// <summary>log q(x): the couplings inverted from data to base, then the Gaussian.</summary>
    public Tensor LogProb(Tensor x)
    {
        var logDet = zeros(x.shape[0]);
        for (int i = nets.Length - 1; i >= 0; i--)
        {
            x = x.flip(1); // the swap, undone
            var (a, b) = (x[.., ..1], x[.., 1..]);
            var h = nets[i].call(a);
            var (shift, s) = (h[.., ..1], h[.., 1..]);
            b = (b - shift) * (-s).exp();
            logDet = logDet - s.squeeze(1);
            x = cat(new[] { a, b }, 1);
        }
        var z = (x - loc) * (-logScale).exp();
        var logBase = (-0.5 * z.square() - logScale - 0.5 * Math.Log(2 * Math.PI)).sum(1);
        return logBase + logDet;
    }

    /// <summary>Rows of two moons with noise 0.1 (upper moon, and the lower one shifted by (1, -0.5)).</summary>
    public static Tensor Moons(int n)
    {
        var t = rand(n, 1) * Math.PI;
        var upper = (rand(n, 1) < 0.5).to(ScalarType.Float32);
        var x = upper * t.cos() + (1 - upper) * (1 - t.cos());
        var y = upper * t.sin() + (1 - upper) * (0.5 - t.sin());
        return cat(new[] { x, y }, 1) + 0.1 * randn(n, 2);
    }
}

/// <summary>Makes std::ios_base_library_init (GCC 13) visible to LibTorchSharp before TorchSharp loads it.</summary>
static class GlibcxxShim
{
    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern IntPtr DlOpen(string file, int mode);

    public static void Load()
    {
        var shim = Path.Combine(AppContext.BaseDirectory, "libflows-ios-init.so");
        if (File.Exists(shim) && DlOpen(shim, 2 | 0x100) == IntPtr.Zero) // RTLD_NOW | RTLD_GLOBAL
            throw new InvalidOperationException($"could not load {shim}");
    }
}
