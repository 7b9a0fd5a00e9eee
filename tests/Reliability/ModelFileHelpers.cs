using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Text.Json.Nodes;
using Flows.CSharp;

namespace Flows.Reliability.Tests;

/// <summary>Model folders to damage: the files' bytes, a manifest edited as JSON and sealed again
/// (an independent implementation of the format's seal), and the check that a refused load left
/// every byte on disk as it was.</summary>
internal static class ModelFiles
{
    public const string Manifest = "model.json";
    public const string Weights = "weights.safetensors";

    /// <summary>A standardised 2-column model with two coupling layers, fitted a few steps.</summary>
    public static DensityModel Fitted(ulong seed = 1)
    {
        var random = new Random((int)seed);
        var data = new float[200, 2];
        for (int i = 0; i < 200; i++)
        {
            data[i, 0] = (float)(3 + 2 * Normal(random));
            data[i, 1] = (float)(-1 + 0.5 * Normal(random));
        }
        return DensityModel.CreateRealNvp(2, layers: 2, hidden: 8, seed: seed).Fit(data, new FitOptions(Steps: 5, BatchSize: 64, LearningRate: 1e-2));
    }

    public static float[,] Probe(int n = 16, int seed = 3)
    {
        var random = new Random(seed);
        var rows = new float[n, 2];
        for (int i = 0; i < n; i++)
        {
            rows[i, 0] = (float)(3 + 2 * Normal(random));
            rows[i, 1] = (float)(-1 + 0.5 * Normal(random));
        }
        return rows;
    }

    private static double Normal(Random random) => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>The folder's files and their bytes.</summary>
    public static Dictionary<string, byte[]> Snapshot(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), f => File.ReadAllBytes(f));

    /// <summary>Asserts the folder holds exactly the files and bytes of <paramref name="snapshot"/>.</summary>
    public static void AssertUnchanged(Dictionary<string, byte[]> snapshot, string folder)
    {
        var now = Snapshot(folder);
        Assert.Equal(snapshot.Keys.Order(), now.Keys.Order());
        foreach (var (name, bytes) in snapshot) Assert.True(bytes.AsSpan().SequenceEqual(now[name]), $"{name} changed on disk");
    }

    /// <summary>The manifest as JSON, to edit.</summary>
    public static JsonObject ReadManifest(string folder) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, Manifest)))!.AsObject();

    /// <summary>Writes <paramref name="manifest"/> with a valid seal: the SHA-256 of the bytes with the seal's
    /// 64 digits written as zeros.</summary>
    public static void WriteSealed(string folder, JsonObject manifest) => File.WriteAllBytes(Path.Combine(folder, Manifest), Sealed(manifest.ToJsonString()));

    /// <summary>The manifest text with its seal recomputed (the text must have the seal field); done on the
    /// text, so that it works on manifests no JSON parser accepts.</summary>
    public static byte[] Sealed(string text)
    {
        var zero = new string('0', 64);
        var field = new Regex("\"manifestSha256\":\\s*\"[0-9a-f]{64}\"");
        Assert.Single(field.Matches(text));
        var zeroed = field.Replace(text, $"\"manifestSha256\":\"{zero}\"");
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(zeroed)));
        return Encoding.UTF8.GetBytes(zeroed.Replace(zero, hash));
    }

    /// <summary>Points the manifest's weights checksum at the current weights file and seals it.</summary>
    public static void RehashWeights(string folder, JsonObject manifest)
    {
        manifest["weights"]!["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, Weights))));
        WriteSealed(folder, manifest);
    }
}
