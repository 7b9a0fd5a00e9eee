using Flows.Distributions;
using Flows.Io;
using Flows.Tensors;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>
/// A density model on rows of <see cref="Dimension"/> numbers: a normalising flow with, optionally,
/// the column standardisation it was fitted on. Immutable: fitting returns a new model.
/// Direction: <see cref="Forward"/> maps base points to data (sampling), <see cref="Inverse"/>
/// maps data to base points (density). Conditional models take their context as a second array.
/// </summary>
public sealed partial class DensityModel : IDisposable
{
    private readonly CoreModel core;
    private int disposed;

    private DensityModel(CoreModel model, FitReport? lastFit = null)
    {
        core = model;
        LastFit = lastFit;
        image = ImageShapeOf(model);
        if (!model.Flow.Base.Device.IsCpu) DeviceModels.Register(this);
    }

    // the core of a model not yet disposed, for DeviceModels
    internal CoreModel? CoreIfLive => disposed == 0 ? core : null;

    private CoreModel model => disposed == 0 ? core : throw new ObjectDisposedException(nameof(DensityModel), "this model was disposed");

    /// <summary>Returns the GPU memory of the model's parameters and buffers to the device's pool now, rather than
    /// when the garbage collector finds the model unreachable (memory that another live model shares, such as the
    /// model it was fitted from, stays). Afterwards the model cannot be used. For a CPU model it only marks it disposed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        if (!core.Flow.Base.Device.IsCpu) DeviceModels.Release(this, core);
    }

    /// <summary>How <see cref="Fit(float[,], FitOptions?, IProgress{TrainingProgress}?, CancellationToken)"/> trains
    /// this model; saved with it.</summary>
    public FitMethod FitMethod => model.Fitting.Tag switch
    {
        Fitting.Tags.FlowMatching => FitMethod.FlowMatching,
        Fitting.Tags.Rnode => FitMethod.Rnode,
        Fitting.Tags.OtFlow => FitMethod.OtFlow,
        _ => FitMethod.MaximumLikelihood,
    };

    /// <summary>Number of columns of the data this model describes.</summary>
    public int Dimension => model.Flow.Base.Event.Aggregate(1, (a, b) => a * b);

    /// <summary>Number of context columns a conditional model needs (0: unconditional).</summary>
    public int ContextDimension => model.ContextDim;

    /// <summary>True when the model standardises raw columns before its flow.</summary>
    public bool IsStandardised => FSharpInterop.ValueOrNull(model.Standardisation) is not null;

    /// <summary>The layers' names, in forward (base → data) order.</summary>
    public IReadOnlyList<string> LayerNames => model.Flow.Layers.Select(b => b.Name).ToArray();

    /// <summary>The model's layers in forward order (base → data), with their settings and parameter counts
    /// (a fitted model's last layer may be the Gaussian stage it was fitted on).</summary>
    public IReadOnlyList<Layer> Layers => model.Flow.Layers.Select(b => new Layer(b)).ToArray();

    /// <summary>Number of learnable scalars.</summary>
    public int ParameterCount => FlowModule.parameters(model.Flow).NumElements;

    /// <summary>The report of the fit that produced this model; null for a built or loaded model.</summary>
    public FitReport? LastFit { get; }

    /// <summary>Where the model's parameters live and its computations run: "cpu" or "cuda:N".</summary>
    public string Device => model.Flow.Base.Device.ToString();

    /// <summary>The same model with its parameters on <paramref name="device"/>: "cpu", "cuda" (device 0) or
    /// "cuda:N". Arrays passed to it are copied there and results come back as arrays; fitting runs there.</summary>
    /// <exception cref="ArgumentException">Not a device name.</exception>
    /// <exception cref="InvalidOperationException">The device cannot be used; the message says what is missing (for
    /// CUDA: the driver, NVRTC or cuBLAS, and where they were looked for).</exception>
    public DensityModel To(string device)
    {
        Tensors.Device target;
        try
        {
            target = Tensors.Device.Parse(device);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(e.Message.Split(" (Parameter")[0], nameof(device));
        }
        return new DensityModel(ModelModule.moveTo(target, model), LastFit);
    }

    /// <summary>A flow composed by hand from <paramref name="layers"/> (in forward order) on a base distribution,
    /// optionally with one context embedding shared by every layer (nflows' <c>embedding_net</c>).</summary>
    /// <param name="layers">At least one layer, all of the same dimension.</param>
    /// <param name="baseDistribution">Where the flow starts.</param>
    /// <param name="contextDimension">Context columns the model takes (0: none). Without an embedding the
    /// conditional layers are built for this many columns.</param>
    /// <param name="contextEmbedding">Null for none, or the widths of an MLP (tanh between layers) that maps the
    /// <paramref name="contextDimension"/> raw context columns once per pass to features every conditional
    /// layer sees: hidden widths, then the output width w last (<c>new[] { 32, 8 }</c>: 32 hidden units,
    /// 8 features). The conditional layers must then be built for w context columns (<c>contextDimension: 8</c>),
    /// and at least one layer must be conditional. The model is saved and loaded as one "context-embedding"
    /// layer around a "chain" of the layers.</param>
    /// <param name="embeddingSeed">Seed of the embedding's initial weights.</param>
    /// <exception cref="ArgumentException">No layers, layers of different dimensions, or with an embedding: a
    /// width that is not positive, no context, no conditional layer, or a layer built for another context width
    /// than the embedding's output.</exception>
    public static DensityModel Compose(IEnumerable<Layer> layers, BaseDistribution baseDistribution = BaseDistribution.DiagonalNormal, int contextDimension = 0,
        int[]? contextEmbedding = null, ulong embeddingSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var list = layers.ToArray();
        if (list.Length == 0) throw new ArgumentException("a flow needs at least one layer", nameof(layers));
        if (contextDimension < 0) throw new ArgumentOutOfRangeException(nameof(contextDimension), contextDimension, "must be at least 0");
        int dimension = list[0].Dimension;
        for (int i = 0; i < list.Length; i++)
        {
            if (list[i] is null) throw new ArgumentException($"layer {i} is null", nameof(layers));
            if (list[i].Dimension != dimension)
                throw new ArgumentException($"layer {i} ({list[i].Name}) maps {list[i].Dimension} columns; layer 0 maps {dimension}", nameof(layers));
        }
        var distribution = baseDistribution switch
        {
            BaseDistribution.StandardNormal => DistributionModule.standardNormal(new[] { dimension }, Dtype.Float32),
            BaseDistribution.DiagonalNormal => DistributionModule.diagonalNormal(new[] { dimension }, Dtype.Float32),
            _ => throw new ArgumentOutOfRangeException(nameof(baseDistribution), baseDistribution, "unknown base distribution"),
        };
        var bijectors = contextEmbedding is null
            ? list.Select(l => l.Bijector).ToArray()
            : new[] { SharedEmbedding(list, contextDimension, contextEmbedding, embeddingSeed) };
        var flow = FlowModule.create(distribution, FSharpInterop.List(bijectors));
        return new DensityModel(ModelModule.ofFlow(contextDimension, flow));
    }

    // one embedding contextDimension → contextEmbedding widths… around a rebuildable chain of the layers
    private static Bijector SharedEmbedding(Layer[] layers, int contextDimension, int[] contextEmbedding, ulong seed)
    {
        if (contextEmbedding.Length == 0 || contextEmbedding.Any(w => w < 1))
            throw new ArgumentException($"the embedding's widths must be positive, hidden widths then the output width; got [{string.Join(", ", contextEmbedding)}]", nameof(contextEmbedding));
        if (contextDimension < 1)
            throw new ArgumentException("a context embedding needs context columns to embed", nameof(contextDimension));
        int features = contextEmbedding[^1];
        int conditional = 0;
        for (int i = 0; i < layers.Length; i++)
        {
            if (!layers[i].Settings.TryGetValue("contextDim", out var width) || width is not int w || w == 0) continue;
            if (w != features)
                throw new ArgumentException($"layer {i} ({layers[i].Name}) is built for {w} context columns; the embedding gives {features}", nameof(layers));
            conditional++;
        }
        if (conditional == 0)
            throw new ArgumentException($"no layer takes a context, so nothing would see the embedding (build the conditional layers with contextDimension: {features})", nameof(layers));
        return Bijectors.ContextEmbedding.shared(new Generator(seed), Dtype.Float32, contextDimension,
            FSharpInterop.List(contextEmbedding[..^1]), FSharpInterop.List(layers.Select(l => l.Bijector).ToArray()));
    }

    /// <summary>log p(x) of every row, in nats.</summary>
    /// <param name="data">Rows of <see cref="Dimension"/> finite values.</param>
    /// <param name="context">One context row per data row, for a conditional model; null otherwise.</param>
    /// <exception cref="ArgumentException">Empty data, the wrong number of columns or rows, or a value that is not finite (the row and column are named).</exception>
    public float[] LogProb(float[,] data, float[,]? context = null) =>
        LogProbOf(DataRows(data, nameof(data)), ContextRows(context, data.GetLength(0)));

    /// <summary>log p(x) of every row, in nats (computed in the model's precision, float32 unless loaded otherwise).</summary>
    /// <inheritdoc cref="LogProb(float[,], float[,])"/>
    public double[] LogProb(double[,] data, double[,]? context = null)
    {
        var rows = DataRows(data, nameof(data));
        RefuseUnneededContext(context is not null);
        var contextRows = context is null ? null : ArrayConversions.ToRows(context, ContextDimension, nameof(context));
        return Array.ConvertAll(LogProbOf(rows, CheckedContext(contextRows, data.GetLength(0))), v => (double)v);
    }

    /// <summary><paramref name="count"/> rows drawn from an unconditional model: fresh rows on every call, or, with
    /// a <paramref name="seed"/>, the same rows for the same seed.</summary>
    /// <param name="count">Rows to draw (at least 1).</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh randomness.</param>
    /// <exception cref="InvalidOperationException">The model is conditional (use an overload with a context).</exception>
    public float[,] Sample(int count, ulong? seed = null) =>
        ArrayConversions.ToMatrix(ModelModule.sample(UnconditionalDraw(count), Seeds.GeneratorFor(seed), count, model));

    /// <summary>One row drawn for each row of <paramref name="context"/> (conditional models): fresh rows on every
    /// call, or the same rows for the same <paramref name="seed"/>.</summary>
    /// <param name="context">One context row per row to draw.</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh randomness.</param>
    public float[,] Sample(float[,] context, ulong? seed = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var ctx = ContextRows(context, context.GetLength(0));
        return ArrayConversions.ToMatrix(ModelModule.sample(ctx, Seeds.GeneratorFor(seed), context.GetLength(0), model));
    }

    /// <summary><paramref name="count"/> rows drawn for one context (conditional models), e.g. many samples of
    /// p(x | c) for a single c.</summary>
    /// <param name="count">Rows to draw (at least 1).</param>
    /// <param name="contextRow">The context, <see cref="ContextDimension"/> values.</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh randomness.</param>
    public float[,] Sample(int count, float[] contextRow, ulong? seed = null) => Sample(RepeatedContext(count, contextRow), seed);

    /// <summary><paramref name="count"/> rows drawn from an unconditional model with log p(x) of each, in one pass:
    /// no inverse is run, so this is cheaper than <see cref="Sample(int, ulong?)"/> then <see cref="LogProb(float[,], float[,])"/>
    /// for flows whose inverse is iterative or autoregressive.</summary>
    /// <param name="count">Rows to draw (at least 1).</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh randomness.</param>
    public SampledRows SampleWithLogProb(int count, ulong? seed = null)
    {
        var (rows, logProb) = ModelModule.sampleAndLogProb(UnconditionalDraw(count), Seeds.GeneratorFor(seed), count, model);
        return new SampledRows(ArrayConversions.ToMatrix(rows), logProb.toArray32());
    }

    /// <summary>One row drawn for each row of <paramref name="context"/> with log p(x | c) of each, in one pass.</summary>
    /// <param name="context">One context row per row to draw.</param>
    /// <param name="seed">Makes the draw repeatable; null draws fresh randomness.</param>
    public SampledRows SampleWithLogProb(float[,] context, ulong? seed = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var ctx = ContextRows(context, context.GetLength(0));
        var (rows, logProb) = ModelModule.sampleAndLogProb(ctx, Seeds.GeneratorFor(seed), context.GetLength(0), model);
        return new SampledRows(ArrayConversions.ToMatrix(rows), logProb.toArray32());
    }


    private Context UnconditionalDraw(int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be at least 1");
        if (ContextDimension > 0) throw new InvalidOperationException($"this model is conditional: sample with a context of {ContextDimension} columns");
        return ContextModule.none;
    }

    private float[,] RepeatedContext(int count, float[] contextRow)
    {
        ArgumentNullException.ThrowIfNull(contextRow);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be at least 1");
        if (ContextDimension == 0) throw new ArgumentException("this model is not conditional: pass no context", nameof(contextRow));
        if (contextRow.Length != ContextDimension)
            throw new ArgumentException($"the context row has {contextRow.Length} values; the model needs {ContextDimension}", nameof(contextRow));
        var context = new float[count, contextRow.Length];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < contextRow.Length; j++) context[i, j] = contextRow[j];
        return context;
    }

    /// <summary>Maps base points to data rows (the sampling direction), with log|det J| per row.</summary>
    /// <param name="latent">Base-side rows.</param>
    /// <param name="context">One context row per row, for a conditional model.</param>
    public MappedRows Forward(float[,] latent, float[,]? context = null)
    {
        var rows = ToModelDevice(DataRows(latent, nameof(latent)));
        var (y, logDet) = ModelModule.forward(ContextRows(context, latent.GetLength(0)), rows, model);
        return new MappedRows(ArrayConversions.ToMatrix(y), logDet.toArray32());
    }

    /// <summary>Maps data rows to base points (the density direction), with log|det J| per row.</summary>
    /// <param name="data">Data rows.</param>
    /// <param name="context">One context row per row, for a conditional model.</param>
    public MappedRows Inverse(float[,] data, float[,]? context = null)
    {
        var rows = ToModelDevice(DataRows(data, nameof(data)));
        var (z, logDet) = ModelModule.inverse(ContextRows(context, data.GetLength(0)), rows, model);
        return new MappedRows(ArrayConversions.ToMatrix(z), logDet.toArray32());
    }

    /// <summary>Writes the model to the directory <paramref name="directory"/> (model.json and
    /// weights.safetensors). Both files are written to a fresh sibling folder that then takes the
    /// directory's place in one atomic step, so a crash at any moment leaves the old model or the new one;
    /// saves racing on one directory (threads or processes) end with one of their models, complete.
    /// Through a symlink, the folder the link names is replaced and the link kept.</summary>
    /// <exception cref="ArgumentException">The directory holds files that are not a model's.</exception>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ModelFile.save(directory, model);
    }

    /// <summary>Reads a model saved by <see cref="Save"/> (or by the F# core).</summary>
    /// <exception cref="DirectoryNotFoundException">No such directory.</exception>
    /// <exception cref="FileNotFoundException">A model file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, truncated, edited (both files are covered by
    /// SHA-256 hashes), of another format version, has settings or standardisations that are invalid or do
    /// not fit the weights, or disagrees with the other (the message names the file and what was wrong).</exception>
    public static DensityModel Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return new DensityModel(ModelFile.load(directory));
    }

    private float[] LogProbOf(Tensor rows, Context context) =>
        ModelModule.logProb(context, ToModelDevice(rows), model).toArray32();

    // rows on the model's device, in their own precision: the core standardises float64 rows before
    // rounding them to the model's dtype
    private Tensor ToModelDevice(Tensor rows) => TensorOf.onDevice(model.Flow.Base.Device, rows);

    private Context ContextRows(float[,]? context, int rows)
    {
        RefuseUnneededContext(context is not null);
        return CheckedContext(context is null ? null : ArrayConversions.ToRows(context, ContextDimension, nameof(context)), rows);
    }

    private void RefuseUnneededContext(bool given)
    {
        if (given && ContextDimension == 0) throw new ArgumentException("this model is not conditional: pass no context", "context");
    }

    // The context a call needs: none for an unconditional model, one row per data row otherwise.
    private Context CheckedContext(Tensor? context, int rows)
    {
        if (context is null)
        {
            if (ContextDimension > 0) throw new ArgumentException($"this model is conditional: pass a context of {ContextDimension} columns", nameof(context));
            return ContextModule.none;
        }
        RefuseUnneededContext(true);
        if (context.shape[0] != rows) throw new ArgumentException($"the context has {context.shape[0]} rows; the data has {rows}", nameof(context));
        return ContextModule.ofCondition(ToModelDevice(context));
    }
}
