using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Flows.CSharp;
using static Flows.Reliability.Tests.ModelFiles;

namespace Flows.Reliability.Tests;

/// <summary>Damaged and edited model files: every one is refused with InvalidDataException naming the
/// file and what was wrong, and the refused load changes nothing on disk.</summary>
public sealed class ModelFileIntegrityTests : IDisposable
{
    private readonly TempFolder temp = new();
    private readonly string folder;
    private readonly DensityModel model = Fitted();

    public ModelFileIntegrityTests()
    {
        folder = Path.Combine(temp.Root, "model");
        model.Save(folder);
    }

    public void Dispose() => temp.Dispose();

    private InvalidDataException Refused(string file)
    {
        var before = Snapshot(folder);
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(folder));
        Assert.Contains(Path.Combine(folder, file), error.Message);
        AssertUnchanged(before, folder);
        return error;
    }

    [Fact]
    public void An_edited_standardisation_scale_is_refused_by_the_manifest_seal()
    {
        var path = Path.Combine(folder, Manifest);
        var manifest = ReadManifest(folder);
        var scale = manifest["standardisation"]!["scale"]![0]!.GetValue<double>();
        var text = File.ReadAllText(path);
        var written = scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains(written, text);
        File.WriteAllText(path, text.Replace(written, (scale * 2).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        var error = Refused(Manifest);
        Assert.Contains("manifestSha256", error.Message);
        Assert.Contains("edited", error.Message);
    }

    [Fact]
    public void Every_byte_of_the_manifest_with_a_flipped_bit_is_refused()
    {
        var path = Path.Combine(folder, Manifest);
        var original = File.ReadAllBytes(path);
        var random = new Random(5);
        for (int i = 0; i < original.Length; i++)
        {
            var flipped = (byte[])original.Clone();
            flipped[i] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, flipped);
            var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(folder));
            Assert.True(error.Message.Contains(path), $"byte {i}: {error.Message}");
        }
        File.WriteAllBytes(path, original);
        Assert.Equal(model.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
    }

    [Fact]
    public void Bit_flips_in_the_weights_header_and_data_are_refused()
    {
        var path = Path.Combine(folder, Weights);
        var original = File.ReadAllBytes(path);
        var random = new Random(6);
        // every byte of the length and header, and a sample of the data
        var headerEnd = 8 + (int)BitConverter.ToInt64(original, 0);
        var positions = Enumerable.Range(0, headerEnd).Concat(Enumerable.Range(0, 300).Select(_ => random.Next(headerEnd, original.Length)));
        foreach (var i in positions)
        {
            var flipped = (byte[])original.Clone();
            flipped[i] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, flipped);
            var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(folder));
            Assert.True(error.Message.Contains(path), $"byte {i}: {error.Message}");
        }
    }

    public static TheoryData<string, int> Truncations => new()
    {
        { Weights, 0 }, { Weights, 5 }, { Weights, 8 }, { Weights, 9 }, { Weights, -1 /* inside the header */ },
        { Weights, -2 /* one byte into the data */ }, { Weights, -3 /* half of the data */ }, { Weights, -4 /* one byte short */ },
        { Manifest, 0 }, { Manifest, 1 }, { Manifest, -3 }, { Manifest, -4 },
    };

    [Theory]
    [MemberData(nameof(Truncations))]
    public void A_truncated_file_is_refused_naming_it(string file, int length)
    {
        var path = Path.Combine(folder, file);
        var bytes = File.ReadAllBytes(path);
        var dataStart = file == Weights ? 8 + (int)BitConverter.ToInt64(bytes, 0) : 0;
        var keep = length switch
        {
            -1 => dataStart / 2,
            -2 => dataStart + 1,
            -3 => (dataStart + bytes.Length) / 2,
            -4 => bytes.Length - 1,
            _ => length,
        };
        File.WriteAllBytes(path, bytes[..keep]);
        var error = Refused(file);
        if (file == Weights && keep >= 8) Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void A_version_1_manifest_without_a_seal_still_loads()
    {
        var manifest = ReadManifest(folder);
        manifest["version"] = 1;
        manifest.Remove("manifestSha256");
        File.WriteAllText(Path.Combine(folder, Manifest), manifest.ToJsonString());
        Assert.Equal(model.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
    }

    [Fact]
    public void A_version_2_manifest_without_its_seal_is_refused()
    {
        var manifest = ReadManifest(folder);
        manifest.Remove("manifestSha256");
        File.WriteAllText(Path.Combine(folder, Manifest), manifest.ToJsonString());
        Assert.Contains("manifestSha256", Refused(Manifest).Message);
    }

    public static TheoryData<string, string, string> BadFields => new()
    {
        { "standardisation.scale", "0", "scales must be finite and positive" },
        { "standardisation.scale", "-1.5", "scales must be finite and positive" },
        { "standardisation.scale", "\"NaN\"", "scales must be finite and positive" },
        { "standardisation.scale", "\"Infinity\"", "scales must be finite and positive" },
        { "standardisation.mean", "\"-Infinity\"", "means must be finite" },
        { "standardisation.mean", "[1]", "has 1 values; the model has 2 columns" },
        { "contextDim", "-1", "contextDim is -1" },
        { "contextDim", "\"two\"", "unexpected content" },
        { "dtype", "\"float16\"", "dtype 'float16'" },
        { "contextStandardisation", "{\"mean\": [0], \"scale\": [1]}", "has 1 values; the model has 0 columns" },
    };

    [Theory]
    [MemberData(nameof(BadFields))]
    public void A_sealed_manifest_with_an_invalid_field_is_refused_naming_the_field(string field, string json, string expected)
    {
        var manifest = ReadManifest(folder);
        var value = JsonNode.Parse(json);
        var parts = field.Split('.');
        if (parts.Length == 1) manifest[field] = value;
        else if (value is JsonArray) manifest[parts[0]]![parts[1]] = value;
        else manifest[parts[0]]![parts[1]]![0] = value;
        WriteSealed(folder, manifest);
        Assert.Contains(expected, Refused(Manifest).Message);
    }

    [Fact]
    public void A_bad_standardisation_is_refused_before_any_layer_is_built()
    {
        var manifest = ReadManifest(folder);
        manifest["standardisation"]!["scale"]![1] = 0;
        // a layer that would need 28.8 GB: had it been built first, the budget would have said so
        manifest["layers"]![0]!["settings"]!["hidden"] = new JsonObject { ["ints"] = new JsonArray(60_000, 60_000) };
        WriteSealed(folder, manifest);
        var error = Refused(Manifest);
        Assert.Contains("\"standardisation\".scale[1] is 0; scales must be finite and positive", error.Message);
    }

    public static TheoryData<string> Hostile => new()
    {
        "hidden 2,000,000,000", "dim 1e9", "hidden 60,000 twice", "nested 100,000 deep", "an array of 100,000 ints",
        "a string for an int", "320,000 layers past the size cap", "a safetensors header past the file", "safetensors offsets past the file",
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void A_hostile_manifest_is_refused_in_milliseconds_without_a_large_allocation(string attack)
    {
        var manifest = ReadManifest(folder);
        var layer = manifest["layers"]![0]!["settings"]!.AsObject();
        var file = Manifest;
        byte[]? raw = null;
        switch (attack)
        {
            case "hidden 2,000,000,000": layer["hidden"] = new JsonObject { ["ints"] = new JsonArray(2_000_000_000) }; break;
            case "dim 1e9": layer["dim"] = new JsonObject { ["int"] = 1_000_000_000 }; break;
            // within the size bound each, 3.6e9 weights together: the allocation budget refuses it
            case "hidden 60,000 twice": layer["hidden"] = new JsonObject { ["ints"] = new JsonArray(60_000, 60_000) }; break;
            case "nested 100,000 deep":
                raw = Encoding.UTF8.GetBytes(manifest.ToJsonString().Replace("\"layers\":[", "\"layers\":[" + new string('[', 100_000) + new string(']', 100_000) + ","));
                break;
            case "an array of 100,000 ints":
                raw = Encoding.UTF8.GetBytes(manifest.ToJsonString().Replace("\"settings\":{", "\"settings\":{\"perm\":{\"ints\":[" + string.Join(",", Enumerable.Range(0, 100_000)) + "]},"));
                break;
            case "a string for an int": layer["hidden"] = new JsonObject { ["ints"] = new JsonArray("8") }; break;
            case "320,000 layers past the size cap":
                var permute = "{\"name\":\"permute\",\"settings\":{\"perm\":{\"ints\":[1,0]}}},";
                raw = Encoding.UTF8.GetBytes(manifest.ToJsonString().Replace("\"layers\":[", "\"layers\":[" + string.Concat(Enumerable.Repeat(permute, 320_000))));
                break;
            case "a safetensors header past the file":
                file = Weights;
                var weights = File.ReadAllBytes(Path.Combine(folder, Weights));
                BitConverter.GetBytes(long.MaxValue / 2).CopyTo(weights, 0);
                File.WriteAllBytes(Path.Combine(folder, Weights), weights);
                break;
            case "safetensors offsets past the file":
                file = Weights;
                var bytes = File.ReadAllBytes(Path.Combine(folder, Weights));
                var text = Encoding.UTF8.GetString(bytes, 8, (int)BitConverter.ToInt64(bytes, 0));
                var patched = new System.Text.RegularExpressions.Regex(@"""shape"":\[[0-9,]*\],""data_offsets"":\[(\d+),\d+\]").Replace(text,
                    m => $"\"shape\":[1000000000,1000],\"data_offsets\":[{m.Groups[1]},{long.Parse(m.Groups[1].Value) + 4_000_000_000_000}]", 1);
                Assert.NotEqual(text, patched);
                var header = Encoding.UTF8.GetBytes(patched.TrimEnd());
                var padded = header.Concat(Enumerable.Repeat((byte)' ', (8 - header.Length % 8) % 8)).ToArray();
                File.WriteAllBytes(Path.Combine(folder, Weights), BitConverter.GetBytes((long)padded.Length).Concat(padded).Concat(bytes[(8 + text.Length)..]).ToArray());
                RehashWeights(folder, manifest);
                break;
        }
        if (raw is not null) File.WriteAllBytes(Path.Combine(folder, Manifest), Sealed(Encoding.UTF8.GetString(raw)));
        else if (file == Manifest) WriteSealed(folder, manifest);
        var before = Snapshot(folder);
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidDataException>(() => DensityModel.Load(folder));
        clock.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Contains(Path.Combine(folder, file), error.Message);
        var manifestBytes = new FileInfo(Path.Combine(folder, Manifest)).Length;
        // refusal takes milliseconds on a quiet machine; the bound only catches a parse that hangs or
        // goes quadratic, with room for a machine shared with other builds
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"{attack}: refused after {clock.Elapsed.TotalMilliseconds:F0} ms ({error.Message})");
        // the file is read and parsed; nothing near what the attack asks for is allocated
        Assert.True(allocated < 10 * manifestBytes + 64_000_000, $"{attack}: {allocated} bytes allocated for a {manifestBytes}-byte manifest");
        AssertUnchanged(before, folder);
        Console.WriteLine($"{attack}: refused in {clock.Elapsed.TotalMilliseconds:F1} ms, {allocated / 1024} KiB allocated: {error.Message}");
    }
}
