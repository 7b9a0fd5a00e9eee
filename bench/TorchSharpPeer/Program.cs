// The peer workloads in TorchSharp, written as PyTorch would be, one model per run (--model):
//   two-moons  normflows' configuration: affine couplings with MLP [1, h, h, 2] conditioners (last layer zero),
//              swap permutations, a learnable diagonal Gaussian base, Adam 5e-4 with weight decay 1e-5;
//   nsf, maf   RQ-NSF and MAF (NeuralSplineFlow.cs, MaskedAutoregressiveFlow.cs) on the rows of --data
//              (float32, row-major, --dim columns), trained on that one batch with Adam 1e-3;
//   cnf        HexagonCnf's step (HexagonCnf.cs) on the rows of --data (float32, 2 columns) from the weights in
//              --weights (float32, our Params' order): the initial NLL and forward NFE, then --steps timed steps;
//   rq-check   weighted sums of the spline's values and log-dets at fixed inputs (SplineCheck), both ways.
// Forward KL, one Adam step and a dispose scope per step. Prints `name value unit` lines as bench/Bench does;
// --seconds sizes the timed run instead of --steps, --fixed-only skips two-moons' all-in figure.
using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

GlibcxxShim.Load();
int Argument(string name, int fallback) =>
    Array.IndexOf(args, $"--{name}") is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
string Text(string name, string fallback) => Array.IndexOf(args, $"--{name}") is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
string model = Text("model", "two-moons");
int blocks = Argument("blocks", 2), hidden = Argument("hidden", 64), batch = Argument("batch", 512), steps = Argument("steps", 1000);
int threads = Argument("threads", Environment.ProcessorCount);
double seconds = double.Parse(Text("seconds", "0"), CultureInfo.InvariantCulture);
torch.set_num_threads(threads);
torch.manual_seed(1);

string Show(double v) => v.ToString(v < 10 ? "F3" : "F1", CultureInfo.InvariantCulture);
float[] ReadFloats(string path)
{
    var bytes = File.ReadAllBytes(path);
    var floats = new float[bytes.Length / sizeof(float)];
    Buffer.BlockCopy(bytes, 0, floats, 0, bytes.Length);
    return floats;
}
double Rate(Action step) => seconds > 0 ? StepTimer.RateFor(step, seconds) : StepTimer.Rate(step, 100, steps);

// One training step: zero_grad, NLL of the batch, backward, Adam; the loss's value comes back.
Func<Tensor, double> Trainer(nn.Module flow, Func<Tensor, Tensor> logProb, double rate, double weightDecay)
{
    var optimiser = optim.Adam(flow.parameters(), lr: rate, weight_decay: weightDecay);
    return x =>
    {
        using var scope = NewDisposeScope();
        optimiser.zero_grad();
        var loss = -logProb(x).mean();
        loss.backward();
        optimiser.step();
        return loss.item<float>();
    };
}

if (model == "two-moons")
{
    var flow = new TwoMoonsFlow(blocks, hidden);
    var step = Trainer(flow, flow.LogProb, 5e-4, 1e-5);
    var fixedBatch = TwoMoonsFlow.Moons(batch);
    var name = $"two_moons.{blocks}x{hidden}.batch{batch}.threads{threads}";
    if (!args.Contains("--fixed-only"))
        Console.WriteLine($"{name}.torchsharp.all_in {Show(Rate(() => { using var scope = NewDisposeScope(); step(TwoMoonsFlow.Moons(batch)); }))} it/s");
    Console.WriteLine($"{name}.torchsharp.fixed_batch {Show(Rate(() => step(fixedBatch)))} it/s");
}
else if (model is "nsf" or "maf")
{
    int dim = Argument("dim", 8);
    var floats = ReadFloats(Text("data", ""));
    var x = tensor(floats, new long[] { floats.Length / dim, dim });
    nn.Module flow;
    Func<Tensor, Tensor> logProb;
    if (model == "nsf") { var nsf = new NeuralSplineFlow(dim, Argument("layers", 8), hidden, Argument("bins", 8), 3.0); (flow, logProb) = (nsf, nsf.LogProb); }
    else { var maf = new MaskedAutoregressiveFlow(dim, Argument("layers", 5), new[] { hidden, hidden }); (flow, logProb) = (maf, maf.LogProb); }
    var name = $"{model}.threads{threads}.torchsharp";
    using (no_grad()) Console.WriteLine($"{name}.initial_nll {(-logProb(x).mean()).item<float>().ToString("F6", CultureInfo.InvariantCulture)} nats");
    var step = Trainer(flow, logProb, 1e-3, 0);
    double last = 0;
    Console.WriteLine($"{name}.fixed_batch {Show(Rate(() => last = step(x)))} it/s");
    Console.WriteLine($"{name}.final_nll {last.ToString("F6", CultureInfo.InvariantCulture)} nats");
}
else if (model == "cnf")
{
    var x = tensor(ReadFloats(Text("data", ""))).reshape(-1, 2);
    var cnf = new HexagonCnf(ReadFloats(Text("weights", "")));
    var name = $"cnf.threads{threads}.torchsharp";
    Console.WriteLine($"{name}.initial_nll {cnf.Nll(x).ToString("F6", CultureInfo.InvariantCulture)} nats");
    Console.WriteLine($"{name}.initial_nfe_forward {cnf.NfeForward} evaluations");
    // 3 warm-up steps as CnfBench; the NFE means cover every step, warm-up included, as ours does here
    int forward = 0, backward = 0;
    double last = 0;
    var rate = StepTimer.Rate(() => { last = cnf.Step(x); forward += cnf.NfeForward; backward += cnf.NfeBackward; }, 3, steps);
    Console.WriteLine($"{name}.fixed_batch {Show(rate)} it/s");
    Console.WriteLine($"{name}.final_nll {last.ToString("F6", CultureInfo.InvariantCulture)} nats");
    Console.WriteLine($"{name}.nfe_forward {((double)forward / (steps + 3)).ToString("F1", CultureInfo.InvariantCulture)} evaluations");
    Console.WriteLine($"{name}.nfe_backward {((double)backward / (steps + 3)).ToString("F1", CultureInfo.InvariantCulture)} evaluations");
}
else if (model == "rq-check")
{
    var (v, raw, weights) = SplineCheck.Inputs(256, 4, 8);
    foreach (var inverse in new[] { false, true })
    {
        var (mapped, logDet) = RationalQuadratic.Apply(v, raw, 8, 3.0, inverse);
        var direction = inverse ? "inverse" : "forward";
        Console.WriteLine($"rq.{direction}.values {(mapped * weights).sum().item<float>().ToString("R", CultureInfo.InvariantCulture)} sum");
        Console.WriteLine($"rq.{direction}.log_det {(logDet * weights).sum().item<float>().ToString("R", CultureInfo.InvariantCulture)} sum");
    }
}
else throw new ArgumentException($"unknown --model {model}; have two-moons, nsf, maf, cnf, rq-check");

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
