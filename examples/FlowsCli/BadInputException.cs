namespace Flows.Cli;

/// <summary>Input the user can fix (a malformed CSV, a missing file, a model that does not fit the
/// data): reported in one line and answered with <see cref="ExitCodes.BadInput"/>.</summary>
public sealed class BadInputException(string message) : Exception(message)
{
    /// <summary>A problem at one cell of a CSV file; rows and columns are counted from 1 as editors show them.</summary>
    public static BadInputException AtCell(string file, long row, int column, string? columnName, string problem)
    {
        var name = string.IsNullOrEmpty(columnName) ? "" : $" ('{columnName}')";
        return new BadInputException($"{file}: row {row}, column {column}{name}: {problem}");
    }
}
