using Flows.CSharp;
using static Flows.Reliability.Tests.ModelFiles;

namespace Flows.Reliability.Tests;

/// <summary>Saving replaces a model in one step: racing saves, leftovers of killed saves, symlinked
/// folders and a folder lost between two renames all end with one complete model.</summary>
public sealed class ModelFileSaveTests : IDisposable
{
    private readonly TempFolder temp = new();

    public void Dispose() => temp.Dispose();

    private string Folder(string name = "model") => Path.Combine(temp.Root, name);

    private static string[] Siblings(string folder) =>
        Directory.GetFileSystemEntries(Path.GetDirectoryName(folder)!).Select(Path.GetFileName).Where(n => n != Path.GetFileName(folder)).Order().ToArray()!;

    [Fact]
    public void Saves_racing_from_sixteen_threads_end_with_one_complete_model_and_no_leftovers()
    {
        var folder = Folder();
        var models = Enumerable.Range(0, 16).Select(i => DensityModel.CreateRealNvp(2, layers: 1, hidden: 4, seed: (ulong)i + 1)).ToArray();
        var references = models.Select((m, i) => { var d = Folder($"reference-{i}"); m.Save(d); return Snapshot(d); }).ToArray();
        var referenceNames = Siblings(folder);
        using var start = new Barrier(16);
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var threads = models.Select(m => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                for (int k = 0; k < 5; k++) m.Save(folder);
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.Empty(errors);
        var final = Snapshot(folder);
        Assert.Contains(references, r => r.Keys.Order().SequenceEqual(final.Keys.Order()) && r.All(kv => kv.Value.AsSpan().SequenceEqual(final[kv.Key])));
        DensityModel.Load(folder);
        Assert.Equal(referenceNames, Siblings(folder));
    }

    [Fact]
    public void Leftover_staging_folders_of_killed_saves_break_neither_saving_nor_loading_and_are_removed_once_stale()
    {
        var folder = Folder();
        var first = Fitted(1);
        first.Save(folder);
        // what saves killed while writing leave: a staging folder with half a weights file, and an
        // empty one; of a process that no longer exists (no pid reaches 999999999), and of this one
        var deadHalf = folder + ".tmp-999999999-0123456789abcdef0123456789abcdef";
        var deadFresh = folder + ".tmp-999999999-fedcba9876543210fedcba9876543210";
        var live = folder + $".tmp-{Environment.ProcessId}-00000000000000000000000000000000";
        foreach (var d in new[] { deadHalf, deadFresh, live }) Directory.CreateDirectory(d);
        File.WriteAllBytes(Path.Combine(deadHalf, Weights), new byte[100]);
        Directory.SetLastWriteTimeUtc(deadHalf, DateTime.UtcNow.AddHours(-1));
        Directory.SetLastWriteTimeUtc(live, DateTime.UtcNow.AddHours(-1));
        Assert.Equal(first.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
        var second = Fitted(2);
        second.Save(folder);
        Assert.Equal(second.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
        Assert.NotEqual(first.LogProb(Probe()), second.LogProb(Probe()));
        // the dead process's old leftover is gone; a fresh one (it may still be writing) and a live process's stay
        Assert.False(Directory.Exists(deadHalf));
        Assert.True(Directory.Exists(deadFresh));
        Assert.True(Directory.Exists(live));
    }

    [Fact]
    public void Saving_through_a_symlink_replaces_the_folder_it_names_and_keeps_the_link()
    {
        var real = Folder("real");
        var link = Folder("link");
        var first = Fitted(1);
        first.Save(real);
        Directory.CreateSymbolicLink(link, real);
        var second = Fitted(2);
        second.Save(link);
        Assert.Equal(real, new DirectoryInfo(link).LinkTarget);
        Assert.Equal(second.LogProb(Probe()), DensityModel.Load(link).LogProb(Probe()));
        Assert.Equal(second.LogProb(Probe()), DensityModel.Load(real).LogProb(Probe()));
        Assert.NotEqual(first.LogProb(Probe()), second.LogProb(Probe()));
        Assert.Equal(new[] { "link", "real" }, Directory.GetFileSystemEntries(temp.Root).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void A_symlink_to_a_missing_folder_gets_the_model_at_its_target()
    {
        var real = Folder("real");
        var link = Folder("link");
        Directory.CreateSymbolicLink(link, real);
        var model = Fitted(3);
        model.Save(link);
        Assert.True(Directory.Exists(real));
        Assert.Equal(model.LogProb(Probe()), DensityModel.Load(link).LogProb(Probe()));
    }

    [Fact]
    public void A_model_folder_lost_between_two_renames_is_read_from_its_old_sibling()
    {
        // where no atomic exchange exists a save renames the old folder aside, then the new one in;
        // a crash in between leaves only the old one, under a sibling name
        var folder = Folder();
        var model = Fitted(4);
        model.Save(folder);
        Directory.Move(folder, folder + ".old-0123456789abcdef0123456789abcdef");
        Assert.Equal(model.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
        var next = Fitted(5);
        next.Save(folder);
        Assert.Equal(next.LogProb(Probe()), DensityModel.Load(folder).LogProb(Probe()));
    }

    [Fact]
    public void A_missing_folder_or_file_is_reported_as_missing()
    {
        var folder = Folder();
        Assert.Contains(folder, Assert.Throws<DirectoryNotFoundException>(() => DensityModel.Load(folder)).Message);
        Fitted(6).Save(folder);
        File.Delete(Path.Combine(folder, Weights));
        var error = Assert.Throws<FileNotFoundException>(() => DensityModel.Load(folder));
        Assert.Equal(Path.Combine(folder, Weights), error.FileName);
        Assert.Contains("weights.safetensors", error.Message);
        Assert.True(File.Exists(Path.Combine(folder, Manifest)));
    }
}
