using Flows.Nn;
using Flows.Tensors;
using Flows.Vae;
using Microsoft.FSharp.Core;
using FitOptionsCore = Flows.Vae.VaeFitOptions;
using VaeCore = Flows.Vae.Vae;
using VaeModule = Flows.Vae.VaeModule;

namespace Flows.CSharp;

/// <summary>
/// A variational autoencoder (Kingma &amp; Welling 2014) whose approximate posterior q(z | x) is a diagonal
/// Gaussian pushed through a normalising flow that reads the encoder's features: planar, radial or Sylvester
/// (orthogonal, Householder, triangular) layers whose parameters the encoder gives each row, or IAF layers
/// conditioned on the features. Rows in, bounds out: <see cref="Elbo"/> and <see cref="ImportanceWeightedBound"/>
/// per row, in nats; <see cref="Encode"/>, <see cref="Decode"/>, <see cref="Sample"/>. Immutable: fitting
/// returns a new model.
/// </summary>
public sealed class VariationalAutoencoder
{
    private readonly VaeCore vae;

    private VariationalAutoencoder(VaeCore vae, VaeFitReport? lastFit)
    {
        this.vae = vae;
        LastFit = lastFit;
    }

    /// <summary>The posterior families <see cref="Create"/> knows; append "-K" for K layers (e.g. "planar-16").</summary>
    public static IReadOnlyList<string> Posteriors => PosteriorModule.names.ToArray();

    /// <summary>A VAE with an MLP encoder and decoder, initialised as PyTorch initialises dense layers.</summary>
    /// <param name="dimension">Values per data row (e.g. 784 for 28×28 images).</param>
    /// <param name="latent">Dimensions of the latent code z.</param>
    /// <param name="posterior">The posterior family, one of <see cref="Posteriors"/>, optionally "-K" layers:
    /// "gaussian", "planar-16", "radial-16", "sylvester-o", "sylvester-h", "sylvester-t", "iaf".</param>
    /// <param name="hidden">Encoder widths (the decoder mirrors them); default 256, 256.</param>
    /// <param name="likelihood">The decoder's observation model.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <exception cref="ArgumentException">A size below 1 or an unknown posterior (the message lists the known ones).</exception>
    public static VariationalAutoencoder Create(int dimension, int latent = 16, string posterior = "gaussian", int[]? hidden = null,
        VaeLikelihood likelihood = VaeLikelihood.Bernoulli, ulong seed = 0)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "must be at least 1");
        if (latent < 1) throw new ArgumentOutOfRangeException(nameof(latent), latent, "must be at least 1");
        ArgumentException.ThrowIfNullOrWhiteSpace(posterior);
        hidden ??= new[] { 256, 256 };
        if (hidden.Length == 0 || hidden.Any(h => h < 1)) throw new ArgumentException("give at least one width, each at least 1", nameof(hidden));
        var spec = new VaeSpec(new[] { dimension }, latent, FSharpInterop.List(hidden), Activation.Elu, Architecture.Mlp,
            PosteriorModule.parse(latent, posterior),
            likelihood == VaeLikelihood.Bernoulli ? Likelihood.Bernoulli : Likelihood.Gaussian);
        return new(VaeModule.create(new Generator(seed), Dtype.Float32, spec), null);
    }

    /// <summary>Values per data row.</summary>
    public int Dimension => vae.Spec.Event[0];

    /// <summary>Dimensions of the latent code.</summary>
    public int Latent => vae.Spec.Latent;

    /// <summary>Learnable scalars of the encoder, posterior flow and decoder.</summary>
    public int ParameterCount => VaeModule.parameters(vae).NumElements;

    /// <summary>The posterior flow's layers, in sampling order (empty for the Gaussian posterior).</summary>
    public IReadOnlyList<string> PosteriorLayers => vae.Flow.Select(b => b.Name).ToArray();

    /// <summary>The report of the fit that made this model; null for a new one.</summary>
    public VaeFitReport? LastFit { get; }

    /// <summary>Fits the VAE to <paramref name="data"/> and returns the fitted model (this one is unchanged).</summary>
    /// <param name="data">Training rows of <see cref="Dimension"/> finite values (in [0, 1] for a Bernoulli likelihood).</param>
    /// <param name="options">Training options.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <exception cref="VaeFitCancelledException">Cancelled; it carries the model trained so far.</exception>
    public VariationalAutoencoder Fit(float[,] data, VaeFitOptions? options = null, IProgress<VaeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new VaeFitOptions();
        var rows = Rows(data, nameof(data));
        if (options.Binarise)
        {
            var values = rows.toArray32();
            if (values.Any(v => v < 0 || v > 1)) throw new ArgumentException("Binarise needs values in [0, 1] (probabilities of a 1)", nameof(data));
        }
        var d = VaeFitOptionsModule.defaults;
        var prepare = options.Binarise
            ? FSharpOption<FSharpFunc<Generator, FSharpFunc<Tensor, Tensor>>>.Some(FuncConvert.FromFunc<Generator, Tensor, Tensor>((g, x) => Data.Images.binarise(g, 2, x)))
            : FSharpOption<FSharpFunc<Generator, FSharpFunc<Tensor, Tensor>>>.None;
        var core = new FitOptionsCore(options.Steps, options.BatchSize, options.LearningRate, d.Optimiser, options.WarmUp, d.ClipNorm, options.Seed,
            prepare, d.MaxBadSteps, Math.Max(1, options.ReportEvery),
            progress is null ? FSharpOption<FSharpFunc<Flows.Vae.VaeProgress, Unit>>.None
                : FSharpOption<FSharpFunc<Flows.Vae.VaeProgress, Unit>>.Some(FuncConvert.FromAction<Flows.Vae.VaeProgress>(
                    p => progress.Report(new VaeProgress(p.Step, p.Loss, p.Beta, TimeSpan.FromSeconds(p.Seconds))))),
            FSharpOption<FSharpFunc<Unit, bool>>.Some(FuncConvert.FromFunc(() => cancellationToken.IsCancellationRequested)));
        var (fitted, report) = VaeModule.fit(core, rows, vae);
        var result = new VariationalAutoencoder(fitted, new VaeFitReport(report.StepsRun, report.Losses, report.SkippedSteps, report.Diverged,
            report.Message, TimeSpan.FromSeconds(report.Seconds)));
        if (report.Cancelled) throw new VaeFitCancelledException(result, cancellationToken);
        return result;
    }

    /// <summary>A one-sample estimate of the evidence lower bound log p(x | z) + log p(z) − log q(z | x) per row, in nats.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> values.</param>
    /// <param name="seed">Makes the estimate repeatable; null draws fresh samples.</param>
    public double[] Elbo(float[,] data, ulong? seed = null) =>
        Doubles(VaeModule.elbo(Seeds.GeneratorFor(seed), Rows(data, nameof(data)), vae));

    /// <summary>The importance-weighted bound (Burda et al. 2016) per row with <paramref name="samples"/> posterior
    /// samples, in nats: the ELBO at 1 sample, rising towards log p(x) as samples grow; at 1,000 samples, the usual
    /// estimate of the test log-likelihood. Scored in chunks, so memory stays bounded.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> values.</param>
    /// <param name="samples">Posterior samples per row (at least 1).</param>
    /// <param name="seed">Makes the estimate repeatable; null draws fresh samples.</param>
    public double[] ImportanceWeightedBound(float[,] data, int samples = 1000, ulong? seed = null)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "must be at least 1");
        return Doubles(VaeModule.iwae(Seeds.GeneratorFor(seed), samples, Rows(data, nameof(data)), vae));
    }

    /// <summary>The posterior's Gaussian before its flow: μ(x) and log σ(x) per row.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> values.</param>
    public LatentGaussian Encode(float[,] data)
    {
        var encoded = VaeModule.encode(Rows(data, nameof(data)), vae);
        return new LatentGaussian(ArrayConversions.ToMatrix(encoded.Item1), ArrayConversions.ToMatrix(encoded.Item2));
    }

    /// <summary>A latent code z ~ q(z | x) per row, drawn through the posterior flow.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> values.</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh samples.</param>
    public float[,] SampleLatent(float[,] data, ulong? seed = null) =>
        ArrayConversions.ToMatrix(VaeModule.posteriorSample(Seeds.GeneratorFor(seed), Rows(data, nameof(data)), vae));

    /// <summary>E[x | z] per latent row: Bernoulli probabilities or Gaussian means.</summary>
    /// <param name="latent">Rows of <see cref="Latent"/> values.</param>
    public float[,] Decode(float[,] latent) =>
        ArrayConversions.ToMatrix(VaeModule.decode(ArrayConversions.ToRows(latent, Latent, nameof(latent)), vae));

    /// <summary>Reconstructions E[x | z], z ~ q(z | x), one per row.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> values.</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh samples.</param>
    public float[,] Reconstruct(float[,] data, ulong? seed = null) =>
        ArrayConversions.ToMatrix(VaeModule.reconstruct(Seeds.GeneratorFor(seed), Rows(data, nameof(data)), vae));

    /// <summary><paramref name="count"/> rows E[x | z] for z drawn from the prior N(0, I).</summary>
    /// <param name="count">Rows to draw (at least 1).</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh samples.</param>
    public float[,] Sample(int count, ulong? seed = null)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be at least 1");
        return ArrayConversions.ToMatrix(VaeModule.sample(Seeds.GeneratorFor(seed), count, vae));
    }

    private Tensor Rows(float[,] data, string name) => ArrayConversions.ToRows(data, Dimension, name);

    private static double[] Doubles(Tensor t) => Array.ConvertAll(t.toArray32(), v => (double)v);

}
