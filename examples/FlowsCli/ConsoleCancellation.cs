using System.Runtime.InteropServices;
using Spectre.Console;

namespace Flows.Cli;

/// <summary>Turns Ctrl+C and SIGTERM into a cancelled token, so that a command can stop cleanly (train
/// saves its partial model). A second Ctrl+C ends the process at once.</summary>
internal sealed class ConsoleCancellation : IDisposable
{
    private readonly CancellationTokenSource source = new();
    private readonly PosixSignalRegistration? terminate;

    public ConsoleCancellation()
    {
        Console.CancelKeyPress += OnCancelKey;
        try { terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerminate); }
        catch (PlatformNotSupportedException) { }
    }

    /// <summary>Cancelled by the first Ctrl+C or SIGTERM.</summary>
    public CancellationToken Token => source.Token;

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        if (source.IsCancellationRequested)
        {
            AnsiConsole.Cursor.Show(); // the progress bar hid it, and no finally block runs now
            return;
        }
        e.Cancel = true;
        source.Cancel();
    }

    private void OnTerminate(PosixSignalContext context)
    {
        context.Cancel = !source.IsCancellationRequested;
        source.Cancel();
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKey;
        terminate?.Dispose();
        source.Dispose();
    }
}
