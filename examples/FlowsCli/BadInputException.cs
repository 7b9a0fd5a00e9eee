namespace Flows.Cli;

/// <summary>Input the user can fix (a malformed CSV, a missing file, a model that does not fit the
/// data): reported in one line and answered with <see cref="ExitCodes.BadInput"/>.</summary>
public sealed class BadInputException(string message) : Exception(message)
{
    private const int Shown = 40;

    /// <summary>A problem at one cell of a CSV file; rows and columns are counted from 1 as editors show them.</summary>
    public static BadInputException AtCell(string file, long row, int column, string? columnName, string problem)
    {
        var name = string.IsNullOrEmpty(columnName) ? "" : $" ({Quote(columnName)})";
        return new BadInputException($"{file}: row {row}, column {column}{name}: {problem}");
    }

    /// <summary>Text from a file as a message shows it: quoted, control characters escaped, and cut
    /// after a few dozen characters so that a hostile cell cannot flood the terminal.</summary>
    public static string Quote(string text)
    {
        var shown = text.Length <= Shown ? text : text[..Shown];
        var escaped = string.Concat(shown.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
        return text.Length <= Shown ? $"'{escaped}'" : $"'{escaped}…' ({text.Length:N0} characters)";
    }
}
