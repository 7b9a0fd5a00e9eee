using System.Text;
using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

public sealed class ModelFileTests : IDisposable
{
    private readonly string directory = Data.TemporaryDirectory();

    public void Dispose()
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, true);
    }

    public static TheoryData<string> Recipes => new() { "realnvp", "nice", "maf", "iaf", "spline", "spline-ar", "naf", "bnaf", "planar", "radial", "sylvester", "residual", "cnf", "catalogue" };

    private static DensityModel Create(string recipe) => recipe switch
    {
        "realnvp" => DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: 1),
        "nice" => DensityModel.CreateNice(2, layers: 2, hidden: 8, seed: 1),
        "maf" => DensityModel.CreateMaf(2, layers: 2, hidden: 8, seed: 1),
        "iaf" => DensityModel.CreateIaf(2, layers: 2, hidden: 8, seed: 1),
        "spline" => DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 8, seed: 1),
        "spline-ar" => DensityModel.CreateNeuralSplineAutoregressive(2, layers: 2, hidden: 8, seed: 1),
        "naf" => DensityModel.CreateNaf(2, layers: 2, hidden: 8, units: 4, seed: 1),
        "bnaf" => DensityModel.CreateBnaf(2, layers: 2, hidden: 4, seed: 1),
        "planar" => DensityModel.CreatePlanar(2, layers: 4, seed: 1),
        "radial" => DensityModel.CreateRadial(2, layers: 4, seed: 1),
        "sylvester" => DensityModel.CreateSylvester(2, layers: 2, seed: 1),
        "residual" => DensityModel.CreateResidual(2, blocks: 2, hidden: 8, seed: 1),
        "cnf" => DensityModel.CreateCnf(2, hidden: 8, seed: 1),
        _ => DensityModel.CreateFromCatalogue("lu-linear", 2, layers: 2, seed: 1),
    };

    [Theory]
    [MemberData(nameof(Recipes))]
    public void A_fitted_model_saved_and_loaded_gives_bit_identical_log_densities_and_samples(string recipe)
    {
        var data = Data.Gaussian2(200, seed: 2);
        // a few steps move every parameter away from its initial value (and set ActNorm from data)
        var model = Create(recipe).Fit(data, new FitOptions(Steps: recipe == "cnf" ? 2 : 5, BatchSize: 64, LearningRate: 1e-2));
        model.Save(directory);
        var loaded = DensityModel.Load(directory);
        var probe = Data.Gaussian2(50, seed: 3);
        Assert.Equal(model.LogProb(probe), loaded.LogProb(probe));
        Assert.Equal(model.LayerNames, loaded.LayerNames);
        Assert.Equal(model.ParameterCount, loaded.ParameterCount);
        Assert.True(loaded.IsStandardised);
        if (recipe is not ("cnf" or "planar" or "sylvester" or "naf" or "bnaf" or "residual"))
            Assert.Equal(model.Sample(20, seed: 4), loaded.Sample(20, seed: 4));
    }

    [Fact]
    public void A_conditional_model_round_trips_with_its_context_width()
    {
        var model = DensityModel.CreateNeuralSpline(2, layers: 2, hidden: 8, contextDimension: 3, seed: 5);
        model.Save(directory);
        var loaded = DensityModel.Load(directory);
        Assert.Equal(3, loaded.ContextDimension);
        var context = new float[4, 3];
        context[1, 2] = 1.5f;
        var x = Data.Gaussian2(4, seed: 6);
        Assert.Equal(model.LogProb(x, context), loaded.LogProb(x, context));
    }

    [Fact]
    public void Saving_again_replaces_the_model_and_leaves_no_temporary_directories()
    {
        var data = Data.Gaussian2(100, seed: 7);
        DensityModel.CreateMaf(2, layers: 1, hidden: 4).Save(directory);
        var second = DensityModel.CreateRealNvp(2, layers: 1, hidden: 4, seed: 8);
        second.Save(directory);
        Assert.Equal(second.LogProb(data), DensityModel.Load(directory).LogProb(data));
        Assert.Equal(new[] { "model.json", "weights.safetensors" }, Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).Order());
        var parent = Path.GetDirectoryName(directory)!;
        Assert.DoesNotContain(Directory.GetDirectories(parent), d => d.StartsWith(directory + ".", StringComparison.Ordinal));
    }

    [Fact]
    public void A_flipped_byte_in_the_weights_fails_the_checksum()
    {
        Saved();
        var path = Path.Combine(directory, "weights.safetensors");
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
        Assert.Contains("weights.safetensors", error.Message);
        Assert.Contains("SHA-256", error.Message);
    }

    [Fact]
    public void A_truncated_weights_file_is_reported_as_truncated()
    {
        Saved();
        var path = Path.Combine(directory, "weights.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
        Assert.Contains("weights.safetensors", error.Message);
        Assert.Contains("truncated", error.Message);
        File.WriteAllBytes(path, bytes[..5]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory)).Message);
    }

    [Fact]
    public void Another_format_version_is_refused()
    {
        Saved();
        var path = Path.Combine(directory, "model.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"version\": 2", "\"version\": 99"));
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
        Assert.Contains("model.json", error.Message);
        Assert.Contains("format version 99 is not supported; this library reads versions 1 and 2", error.Message);
    }

    [Fact]
    public void A_broken_manifest_or_a_missing_file_is_named()
    {
        Saved();
        var manifest = Path.Combine(directory, "model.json");
        var text = File.ReadAllText(manifest);
        File.WriteAllText(manifest, text[..(text.Length / 2)]);
        Assert.Contains("model.json: not valid JSON", Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory)).Message);
        File.WriteAllText(manifest, text.Replace("\"affine-coupling\"", "\"no-such-layer\""));
        Assert.Contains("manifestSha256", Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory)).Message);
        File.WriteAllText(manifest, Data.Sealed(text.Replace("\"affine-coupling\"", "\"no-such-layer\"")));
        var unknown = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
        Assert.Contains("layer 0 ('no-such-layer') cannot be rebuilt", unknown.Message);
        File.Delete(Path.Combine(directory, "weights.safetensors"));
        Assert.Throws<FileNotFoundException>(() => DensityModel.Load(directory));
        Assert.Throws<DirectoryNotFoundException>(() => DensityModel.Load(directory + "-missing"));
    }

    [Fact]
    public void Weights_of_the_wrong_shape_are_named()
    {
        // a model file of a wider network under the manifest of a narrower one
        DensityModel.CreateRealNvp(2, layers: 1, hidden: 8).Save(directory);
        var other = Data.TemporaryDirectory();
        try
        {
            DensityModel.CreateRealNvp(2, layers: 1, hidden: 4).Save(other);
            var manifest = File.ReadAllText(Path.Combine(directory, "model.json"));
            var weights = File.ReadAllBytes(Path.Combine(other, "weights.safetensors"));
            var sum = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(weights));
            var oldSum = System.Text.RegularExpressions.Regex.Match(manifest, "\"sha256\": \"([0-9a-f]+)\"").Groups[1].Value;
            File.WriteAllText(Path.Combine(directory, "model.json"), Data.Sealed(manifest.Replace(oldSum, sum)));
            File.WriteAllBytes(Path.Combine(directory, "weights.safetensors"), weights);
            var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(directory));
            // layer 0's first weight is [hidden; inputs]: [4, 1] in the file, [8, 1] in the manifest's network
            Assert.Contains("tensor 'layers.0.net.0.weight' of layer 0 (affine-coupling) has shape [4, 1]; expected [8, 1]", error.Message);
        }
        finally
        {
            Directory.Delete(other, true);
        }
    }

    [Fact]
    public void A_directory_with_other_files_is_not_overwritten()
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "notes.txt"), "mine", Encoding.UTF8);
        var error = Assert.Throws<ArgumentException>(() => DensityModel.CreateMaf(2, layers: 1).Save(directory));
        Assert.Contains("notes.txt", error.Message);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(directory, "notes.txt")));
    }


    private void Saved() => DensityModel.CreateRealNvp(2, layers: 1, hidden: 4, seed: 9).Save(directory);
}
