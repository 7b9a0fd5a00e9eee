namespace Flows.Cli;

/// <summary>Writes a file so that readers see either the old file or the whole new one.</summary>
public static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary file in the target's folder, then renames it
    /// over <paramref name="path"/>; on any exception the temporary file is deleted and the target untouched.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temporary = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                write(stream);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
