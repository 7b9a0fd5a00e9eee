namespace Flows.Cli;

/// <summary>Checks of where a command will write, made before any work, so that a bad <c>--out</c>
/// costs nothing and never clobbers what is there.</summary>
internal static class OutputPaths
{
    private static readonly string[] ModelFiles = ["model.json", "weights.safetensors"];

    /// <summary>The model folder <paramref name="path"/> may be written: it is not a file, its parent
    /// exists and is writable, and it is new, empty, or (with <paramref name="force"/>) a model folder.</summary>
    public static void CheckModelFolder(string path, bool force)
    {
        var full = FullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar);
        if (File.Exists(full)) throw new BadInputException($"--out {path}: is a file; give a folder for the model");
        CheckParent(path, full);
        if (!Directory.Exists(full)) return;
        var entries = Directory.EnumerateFileSystemEntries(full).Select(e => System.IO.Path.GetFileName(e)).ToList();
        var foreign = entries.Where(n => !ModelFiles.Contains(n)).Order(StringComparer.Ordinal).ToList();
        if (foreign.Count > 0)
            throw new BadInputException($"--out {path}: the folder holds files that are not a model's ({Listed(foreign)}); give a new folder");
        if (entries.Count > 0 && !force)
            throw new BadInputException($"--out {path}: a model is already there; pass --force to replace it");
    }

    /// <summary>The output file <paramref name="path"/> may be written: it is not a folder and its parent exists and is writable.</summary>
    public static void CheckFile(string path)
    {
        var full = FullPath(path);
        if (Directory.Exists(full)) throw new BadInputException($"--out {path}: is a folder; give a file name");
        CheckParent(path, full);
    }

    private static string FullPath(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new BadInputException("--out: the path is empty");
        try { return System.IO.Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new BadInputException($"--out {path}: not a usable path ({e.Message})");
        }
    }

    private static void CheckParent(string path, string full)
    {
        var parent = System.IO.Path.GetDirectoryName(full);
        if (parent is null) throw new BadInputException($"--out {path}: cannot write at the root of a file system");
        if (!Directory.Exists(parent)) throw new BadInputException($"--out {path}: the folder {parent} does not exist");
        // outputs are written beside the target and renamed into place, so the parent must take new files
        var probe = System.IO.Path.Combine(parent, $".flows-probe-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new BadInputException($"--out {path}: the folder {parent} is not writable ({e.Message})");
        }
    }

    private static string Listed(List<string> names) =>
        string.Join(", ", names.Take(3).Select(BadInputException.Quote)) + (names.Count > 3 ? $" and {names.Count - 3} more" : "");
}
