namespace Flows.Cli;

/// <summary>Distinct exit codes, so scripts can tell bad input from failures.</summary>
public static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Ok = 0;
    /// <summary>Something failed that the input does not explain (training diverged, an I/O error).</summary>
    public const int Failure = 1;
    /// <summary>The command line or an input file is wrong; the message says where.</summary>
    public const int BadInput = 2;
    /// <summary>The user cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;
}
