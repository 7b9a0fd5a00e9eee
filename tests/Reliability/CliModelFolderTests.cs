using System.Diagnostics;
using Flows.Cli;
using static Flows.Reliability.Tests.CliHarness;

namespace Flows.Reliability.Tests;

/// <summary>Where train writes and what logprob and sample read: a bad --out is refused before any
/// training, an existing model survives byte for byte without --force, a missing or incomplete
/// model is bad input naming the path.</summary>
public sealed class CliModelFolderTests
{
    private static string[] TrainArgs(string data, string model, params string[] more) =>
        ["train", "--data", data, "--flow", "realnvp", "--layers", "2", "--hidden", "16", "--out", model, .. more];

    [Fact]
    public void An_existing_model_is_kept_byte_for_byte_without_force_and_replaced_with_it()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 200, 1);
        var model = Train(folder, "model", data);
        var before = Snapshot(folder.Root);

        // a million steps would take many minutes: an answer within seconds means nothing was trained
        var clock = Stopwatch.StartNew();
        var refused = Run(TrainArgs(data, model, "--steps", "1000000", "--seed", "9"));
        clock.Stop();
        Assert.Equal(ExitCodes.BadInput, refused.Code);
        Assert.Contains($"--out {model}: a model is already there; pass --force to replace it", refused.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.DoesNotContain("training", refused.Output);
        AssertUnchanged(before, folder.Root);

        var replaced = Run(TrainArgs(data, model, "--steps", "5", "--seed", "9", "--force"));
        Assert.True(replaced.Code == ExitCodes.Ok, replaced.Error);
        var weights = Path.Combine(model, "weights.safetensors");
        Assert.False(before[weights].AsSpan().SequenceEqual(File.ReadAllBytes(weights)));
        Assert.Equal(new[] { "model.json", "weights.safetensors" }, Directory.GetFiles(model).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void An_out_that_is_a_file_a_missing_parent_or_a_folder_of_other_files_is_refused_before_training()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 2);
        var file = folder.File("notes.txt", "keep me");
        var busy = Path.Combine(folder.Root, "busy");
        Directory.CreateDirectory(busy);
        File.WriteAllText(Path.Combine(busy, "thesis.tex"), "keep me too");
        File.WriteAllText(Path.Combine(busy, "model.json"), "{}");
        var before = Snapshot(folder.Root);
        var missingParent = Path.Combine(folder.Root, "no", "such", "model");
        foreach (var (outPath, message) in new[]
        {
            (file, $"--out {file}: is a file"),
            (missingParent, $"--out {missingParent}: the folder {Path.GetDirectoryName(missingParent)} does not exist"),
            (busy, $"--out {busy}: the folder holds files that are not a model's ('thesis.tex')"),
        })
        {
            foreach (var force in new[] { false, true })
            {
                var result = Run(TrainArgs(data, outPath, force ? ["--steps", "1000000", "--force"] : ["--steps", "1000000"]));
                Assert.Equal(ExitCodes.BadInput, result.Code);
                Assert.Contains(message, result.Error);
            }
        }
        AssertUnchanged(before, folder.Root);
        Assert.False(Directory.Exists(Path.Combine(folder.Root, "no")));
    }

    [Fact]
    public void An_empty_folder_is_a_fine_place_for_a_new_model()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 3);
        var empty = Path.Combine(folder.Root, "empty");
        Directory.CreateDirectory(empty);
        var result = Run(TrainArgs(data, empty + "/", "--steps", "3"));
        Assert.True(result.Code == ExitCodes.Ok, result.Error);
        Assert.True(File.Exists(Path.Combine(empty, "weights.safetensors")));
    }

    [Theory]
    [InlineData("nowhere", "no such model folder")]
    [InlineData("no-weights", "not a complete model: weights.safetensors is missing")]
    [InlineData("no-manifest", "not a complete model: model.json is missing")]
    [InlineData("manifest-file", "is a file; give the model folder")]
    [InlineData("truncated", "weights.safetensors")]
    public void A_missing_or_incomplete_model_is_bad_input_naming_the_path(string damage, string message)
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 4);
        var model = Train(folder, "model", data, steps: 3);
        var given = model;
        switch (damage)
        {
            case "nowhere": given = Path.Combine(folder.Root, "nowhere"); break;
            case "no-weights": File.Delete(Path.Combine(model, "weights.safetensors")); break;
            case "no-manifest": File.Delete(Path.Combine(model, "model.json")); break;
            case "manifest-file": given = Path.Combine(model, "model.json"); break;
            default:
                var weights = Path.Combine(model, "weights.safetensors");
                File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^9]);
                break;
        }
        var output = Path.Combine(folder.Root, "out.csv");
        foreach (var args in new[]
        {
            new[] { "logprob", "--model", given, "--data", data, "--out", output },
            ["sample", "--model", given, "-n", "10", "--out", output],
            ["plot", "--model", given, "--out", Path.Combine(folder.Root, "p.png"), "--resolution", "16"],
        })
        {
            var result = Run(args);
            Assert.Equal(ExitCodes.BadInput, result.Code);
            Assert.Contains(given, result.Error);
            Assert.Contains(message, result.Error);
        }
        Assert.False(File.Exists(output));
        Assert.False(File.Exists(Path.Combine(folder.Root, "p.png")));
    }

    [Fact]
    public void An_output_file_that_is_a_folder_is_refused_before_scoring()
    {
        using var folder = new TempFolder();
        var data = GaussianCsv(folder, "d.csv", 50, 5);
        var model = Train(folder, "model", data, steps: 3);
        var target = Path.Combine(folder.Root, "scores");
        Directory.CreateDirectory(target);
        var result = Run("logprob", "--model", model, "--data", data, "--out", target);
        Assert.Equal(ExitCodes.BadInput, result.Code);
        Assert.Contains($"--out {target}: is a folder", result.Error);
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }
}
