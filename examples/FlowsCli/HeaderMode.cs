namespace Flows.Cli;

/// <summary>Whether a CSV file's first row holds column names (<c>--header</c>, <c>--no-header</c>, or neither).</summary>
public enum HeaderMode
{
    /// <summary>Decide from the first row: a header when none of its cells is a number, data when all are,
    /// an error naming the cell when it mixes the two.</summary>
    Auto,
    /// <summary>The first row is column names (<c>--header</c>).</summary>
    Present,
    /// <summary>The first row is data (<c>--no-header</c>).</summary>
    Absent,
}
