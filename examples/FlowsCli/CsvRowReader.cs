using System.Globalization;
using System.Text;
using CsvHelper;
using CsvHelper.Configuration;

namespace Flows.Cli;

/// <summary>Reads a CSV file of numbers a chunk of rows at a time, so that a file of any length is
/// scored in bounded memory. Every cell is checked as it is read; a problem is a
/// <see cref="BadInputException"/> naming the file, the 1-based row (the line an editor shows) and the column.</summary>
public sealed class CsvRowReader : IDisposable
{
    /// <summary>The widest row accepted; a longer row is almost surely not a table of numbers.</summary>
    public const int MaxColumns = 100_000;

    /// <summary>The longest cell accepted, in characters (a number needs a few dozen).</summary>
    public const int MaxCellLength = 65_536;

    private readonly StreamReader reader;
    private readonly CsvParser parser;
    private string[]? next;
    private long nextRow;

    /// <summary>Opens <paramref name="path"/> and reads its first row, deciding by <paramref name="header"/>
    /// whether it is column names.</summary>
    public CsvRowReader(string path, HeaderMode header = HeaderMode.Auto)
    {
        Path = path;
        if (Directory.Exists(path)) throw new BadInputException($"{path}: is a folder, not a CSV file");
        if (!File.Exists(path)) throw new BadInputException($"{path}: no such file");
        // a UTF-8 byte-order mark is skipped; CsvHelper takes CRLF and LF line ends alike
        reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        parser = new CsvParser(reader, new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            HasHeaderRecord = false,
            TrimOptions = TrimOptions.Trim,
            DetectColumnCountChanges = false,
            IgnoreBlankLines = false,
            BadDataFound = null, // a stray quote leaves text that then fails as a number, with its place
            MaxFieldSize = MaxCellLength,
        });
        try
        {
            Advance();
            if (next is null) throw new BadInputException($"{path}: the file is empty");
            Columns = next.Length;
            if (Columns > MaxColumns)
                throw new BadInputException($"{path}: row {nextRow} has {Columns:N0} cells; at most {MaxColumns:N0} columns are read");
            if (header == HeaderMode.Present || header == HeaderMode.Auto && IsHeader(next, nextRow))
            {
                Header = CheckedHeader(next, nextRow);
                Advance();
                if (next is null) throw new BadInputException($"{path}: the file has a header but no data rows");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The file read, as given.</summary>
    public string Path { get; }

    /// <summary>Column names, or null when the first row is data.</summary>
    public string[]? Header { get; }

    /// <summary>Cells per row.</summary>
    public int Columns { get; }

    /// <summary>Data rows returned so far.</summary>
    public long RowsRead { get; private set; }

    /// <summary>True once every data row has been returned.</summary>
    public bool AtEnd => next is null;

    /// <summary>The next at most <paramref name="maxRows"/> data rows as [rows, columns], or null at the end of the file.</summary>
    public double[,]? ReadChunk(int maxRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        if (next is null) return null;
        var values = new double[(int)Math.Min((long)Math.Min(maxRows, 4096) * Columns, Array.MaxLength)];
        int rows = 0;
        while (next is not null && rows < maxRows)
        {
            if ((long)(rows + 1) * Columns > values.Length)
            {
                if ((long)values.Length * 2 > Array.MaxLength)
                    throw new BadInputException($"{Path}: too many rows to hold at once ({RowsRead + rows:N0} read)");
                Array.Resize(ref values, (int)Math.Min((long)values.Length * 2, (long)maxRows * Columns));
            }
            ParseRow(next, nextRow, values.AsSpan(rows * Columns, Columns));
            rows++;
            Advance();
        }
        RowsRead += rows;
        var chunk = new double[rows, Columns];
        Buffer.BlockCopy(values, 0, chunk, 0, rows * Columns * sizeof(double));
        return chunk;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        parser?.Dispose();
        reader?.Dispose();
    }

    private void ParseRow(string[] record, long row, Span<double> into)
    {
        if (record.Length != Columns)
            throw BadInputException.AtCell(Path, row, Math.Min(record.Length, Columns) + 1, null,
                $"the row has {record.Length} cells, the {(Header is null ? "first row" : "header")} has {Columns}");
        for (int j = 0; j < Columns; j++)
            into[j] = Number(record[j], row, j);
    }

    private double Number(string cell, long row, int column)
    {
        string? name = Header?[column];
        if (cell.Length == 0)
            throw BadInputException.AtCell(Path, row, column + 1, name, "the cell is empty");
        if (!TryNumber(cell, out var value))
            throw BadInputException.AtCell(Path, row, column + 1, name,
                $"{BadInputException.Quote(cell)} is not a number{(row == 1 && Header is null ? " (if row 1 holds column names, pass --header)" : "")}");
        if (double.IsNaN(value))
            throw BadInputException.AtCell(Path, row, column + 1, name, $"{BadInputException.Quote(cell)} is not a number (NaN)");
        if (double.IsInfinity(value))
            throw BadInputException.AtCell(Path, row, column + 1, name, $"{BadInputException.Quote(cell)} is infinite or beyond the float32 range (±3.4e38)");
        // the model computes in float32: a larger magnitude would become ±∞ there
        if (Math.Abs(value) > float.MaxValue)
            throw BadInputException.AtCell(Path, row, column + 1, name, $"{BadInputException.Quote(cell)} is beyond the float32 range (±3.4e38)");
        return value;
    }

    // Without --header or --no-header: names only when no cell is a number; a mix is refused, naming the
    // first cell whose kind differs from the first cell's, since guessing either way loses a row or a name.
    private bool IsHeader(string[] record, long row)
    {
        bool firstIsNumber = TryNumber(record[0], out _);
        for (int j = 1; j < record.Length; j++)
        {
            if (TryNumber(record[j], out _) == firstIsNumber) continue;
            var (text, number) = firstIsNumber ? (j, 0) : (0, j);
            var what = record[text].Length == 0 ? "is empty" : $"{BadInputException.Quote(record[text])} is not a number";
            throw BadInputException.AtCell(Path, row, j + 1, null,
                $"row {row} mixes numbers and text: column {text + 1} {what}, column {number + 1} holds {BadInputException.Quote(record[number])}; " +
                "pass --header if the row holds column names, --no-header if it is data, or fix the cell");
        }
        return !firstIsNumber;
    }

    private string[] CheckedHeader(string[] names, long row)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int j = 0; j < names.Length; j++)
        {
            if (names[j].Length == 0) continue;
            if (!seen.TryAdd(names[j], j))
                throw BadInputException.AtCell(Path, row, j + 1, names[j], $"the column name repeats column {seen[names[j]] + 1}");
        }
        return names;
    }

    // The next record that is not a blank line. Blank lines may end the file; one between rows is
    // refused, since in a one-column file it is an empty cell.
    private void Advance()
    {
        long blank = 0;
        while (true)
        {
            bool read;
            try
            {
                read = parser.Read();
            }
            catch (CsvHelperException e)
            {
                var cause = e is MaxFieldSizeException ? $"a cell is longer than {MaxCellLength:N0} characters" : "malformed CSV";
                throw new BadInputException($"{Path}: row {parser.RawRow}: {cause}");
            }
            if (!read)
            {
                next = null;
                return;
            }
            var record = parser.Record ?? [];
            if (record.Length == 0 || record.Length == 1 && record[0].Length == 0)
            {
                if (blank == 0) blank = parser.RawRow;
                continue;
            }
            if (blank != 0)
                throw new BadInputException($"{Path}: row {blank} is blank; blank rows may only end the file");
            next = record;
            nextRow = parser.RawRow;
            return;
        }
    }

    private static bool TryNumber(string cell, out double value) =>
        double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
}
