using System.CommandLine;

namespace Flows.Cli;

/// <summary>The command tree and the one place that turns exceptions into messages and exit codes.</summary>
public static class Cli
{
    /// <summary>Runs the command line <paramref name="args"/>, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, output, error, CancellationToken.None);

    /// <summary>Runs the command line <paramref name="args"/>; cancelling <paramref name="cancel"/> stops it as
    /// Ctrl+C does (train saves its partial model) and gives <see cref="ExitCodes.Cancelled"/>.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancel)
    {
        var root = new RootCommand("flows: normalising-flow density models from CSV files.");
        foreach (var command in Commands.All(output, error, cancel))
            root.Subcommands.Add(command);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) error.WriteLine($"error: {e.Message}");
            error.WriteLine("run 'flows --help' for usage");
            return ExitCodes.BadInput;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = output, Error = error, EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null, // Ctrl+C and SIGTERM come through `cancel` instead
            });
        }
        catch (BadInputException e)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("cancelled");
            return ExitCodes.Cancelled;
        }
        catch (OutOfMemoryException e)
        {
            error.WriteLine($"failed: out of memory ({e.Message}); try fewer rows, a smaller model or --batch-size");
            return ExitCodes.Failure;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            error.WriteLine($"failed: {e.Message}");
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            // a bug, not the user's doing: still an exit code and a message rather than an abort
            error.WriteLine($"failed: {e.GetType().Name}: {e.Message}");
            error.WriteLine(e.StackTrace);
            return ExitCodes.Failure;
        }
    }
}
