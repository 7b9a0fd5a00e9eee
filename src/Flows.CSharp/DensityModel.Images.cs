using Flows.Bijectors;
using Flows.Data;
using Flows.Models;
using Flows.Tensors;
using Flows.Training;
using CoreModel = Flows.Model;

namespace Flows.CSharp;

/// <summary>Images as rows: Glow on flattened C·H·W images, dequantisation and bits per dimension.</summary>
public sealed partial class DensityModel
{
    // [C, H, W] of a Glow model (rows are flattened images), null for other models; read from the
    // flow so that a loaded model knows it too
    private readonly int[]? image;

    /// <summary>Glow (Kingma &amp; Dhariwal 2018) on images of <paramref name="channels"/> × <paramref name="height"/> ×
    /// <paramref name="width"/>, given as rows of C·H·W values flattened channel by channel, then row by row.
    /// Each level squeezes, runs steps of ActNorm, 1×1 convolution and affine coupling, and factors half
    /// of the channels out, with Glow's learned prior N(μ, exp(logs)²) conditioned on the kept channels, or
    /// RealNVP's fixed N(0, I) when <paramref name="learnedPrior"/> is false.</summary>
    /// <param name="channels">Channels C.</param>
    /// <param name="height">Height H, divisible by 2^levels.</param>
    /// <param name="width">Width W, divisible by 2^levels.</param>
    /// <param name="levels">Levels of squeeze and steps.</param>
    /// <param name="stepsPerLevel">Flow steps per level.</param>
    /// <param name="hidden">Channels of the couplings' convolutional networks.</param>
    /// <param name="seed">Seed of the initial weights.</param>
    /// <param name="learnedPrior">Glow's learned prior on the factored-out channels (true) or a fixed standard normal.</param>
    /// <exception cref="ArgumentException">A size is not positive, or height or width is not divisible by 2^levels.</exception>
    public static DensityModel CreateGlow(int channels, int height, int width, int levels = 2, int stepsPerLevel = 4, int hidden = 32, ulong seed = 0,
        bool learnedPrior = true)
    {
        var defaults = Glow.ConfigModule.defaults(channels, height, width);
        var prior = learnedPrior ? defaults.Prior : FactorOut.Prior.Standard;
        var config = new Glow.Config(channels, height, width, levels, stepsPerLevel, hidden, defaults.ScaleMap, prior, 0);
        var glow = new Layer(Glow.asRows(new Generator(seed), Dtype.Float32, config));
        return Compose(new[] { glow }, BaseDistribution.StandardNormal);
    }

    /// <summary>The image shape [C, H, W] of a Glow model's rows; null for models of plain columns.</summary>
    public IReadOnlyList<int>? ImageShape => image;

    /// <summary>Uniform dequantisation of integer levels k ∈ {0 … levels − 1} into x = (k + u)/levels − ½,
    /// u ~ U[0, 1): continuous rows to fit an image model on.</summary>
    /// <param name="images">Rows of integer levels (as floats).</param>
    /// <param name="levels">Levels per value (256 for 8-bit images).</param>
    /// <param name="seed">Seed of the noise u.</param>
    public static float[,] Dequantise(float[,] images, int levels = 256, ulong seed = 0)
    {
        var k = LevelRows(images, levels, nameof(images));
        return ArrayConversions.ToMatrix(Images.dequantise(new Generator(seed), levels, Dtype.Float32, k));
    }

    /// <summary>Bits per dimension of integer-level rows under this model, from the mean log-density of one
    /// dequantisation of them (an upper bound on the discrete code length; a uniform model scores log₂ levels).</summary>
    /// <param name="images">Rows of integer levels (as floats), <see cref="Dimension"/> columns.</param>
    /// <param name="levels">Levels per value (256 for 8-bit images).</param>
    /// <param name="seed">Seed of the dequantisation noise.</param>
    public double BitsPerDim(float[,] images, int levels = 256, ulong seed = 0)
    {
        CheckWidth(images?.GetLength(1), nameof(images));
        var x = Dequantise(images!, levels, seed);
        double nll = -LogProb(x).Average(v => (double)v);
        return Objectives.dequantisedBitsPerDim(levels, Dimension, nll);
    }

    private static Tensor LevelRows(float[,] images, int levels, string name)
    {
        ArgumentNullException.ThrowIfNull(images, name);
        if (levels < 2) throw new ArgumentOutOfRangeException(nameof(levels), levels, "must be at least 2");
        var rows = ArrayConversions.ToRows(images, images.GetLength(1), name);
        for (int i = 0; i < images.GetLength(0); i++)
            for (int j = 0; j < images.GetLength(1); j++)
                if (images[i, j] != MathF.Floor(images[i, j]) || images[i, j] < 0 || images[i, j] >= levels)
                    throw new ArgumentException($"row {i}, column {j} is {images[i, j]}; expected an integer level in 0 … {levels - 1}", name);
        return rows;
    }

    private static int[]? ImageShapeOf(CoreModel model) =>
        model.Flow.Layers.Length == 1 && model.Flow.Layers.Head.Name == "glow"
            ? (int[])FSharpInterop.SettingsOf(model.Flow.Layers.Head.Settings)["image"]
            : null;

    // Data rows, with the image shape named when an image model gets rows of the wrong width.
    private Tensor DataRows(float[,] data, string name)
    {
        CheckWidth(data?.GetLength(1), name);
        return ArrayConversions.ToRows(data!, Dimension, name);
    }

    private Tensor DataRows(double[,] data, string name)
    {
        CheckWidth(data?.GetLength(1), name);
        return ArrayConversions.ToRows(data!, Dimension, name);
    }

    private Tensor DataRows(IEnumerable<float[]> data, string name) => ArrayConversions.ToRows(data, Dimension, name);

    private void CheckWidth(int? columns, string name)
    {
        if (image is not null && columns is int c && c != Dimension)
            throw new ArgumentException(
                $"expected rows of flattened {image[0]}×{image[1]}×{image[2]} images, C·H·W = {Dimension} columns; got {c}", name);
    }
}
