using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;

namespace Flows.Cli;

/// <summary>A numeric table read from or written to CSV: optional column names and the values row by row.</summary>
/// <param name="Header">Column names, or null when the file had no header row.</param>
/// <param name="Values">The numbers, [rows, columns].</param>
public sealed record CsvTable(string[]? Header, double[,] Values)
{
    private static readonly CsvConfiguration Configuration = new(CultureInfo.InvariantCulture)
    {
        HasHeaderRecord = false,
        TrimOptions = TrimOptions.Trim,
        DetectColumnCountChanges = false,
    };

    /// <summary>Number of data rows.</summary>
    public int Rows => Values.GetLength(0);

    /// <summary>Number of columns.</summary>
    public int Columns => Values.GetLength(1);

    /// <summary>Reads a CSV of numbers. The first row is a header when any of its cells is not a number.
    /// Every later row must have as many cells as the first, each a finite number.</summary>
    /// <exception cref="BadInputException">A missing or empty file, a ragged row, a cell that is not a
    /// finite number; the message names the file, row and column.</exception>
    public static CsvTable Read(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException($"{path}: no such file");
        using var reader = new StreamReader(path);
        using var parser = new CsvParser(reader, Configuration);
        string[]? header = null;
        var rows = new List<double[]>();
        int columns = -1;
        while (parser.Read())
        {
            var record = parser.Record ?? [];
            long line = parser.Row;
            if (record.Length == 1 && record[0].Length == 0)
                continue; // a blank line
            if (columns < 0)
            {
                columns = record.Length;
                if (record.Any(cell => !TryNumber(cell, out _)))
                {
                    header = record;
                    continue;
                }
            }
            if (record.Length != columns)
                throw BadInputException.AtCell(path, line, Math.Min(record.Length, columns) + 1, null,
                    $"the row has {record.Length} cells, the {(header is null ? "first row" : "header")} has {columns}");
            var values = new double[columns];
            for (int j = 0; j < columns; j++)
            {
                if (!TryNumber(record[j], out values[j]))
                    throw BadInputException.AtCell(path, line, j + 1, header?[j], $"'{record[j]}' is not a number");
                if (!double.IsFinite(values[j]))
                    throw BadInputException.AtCell(path, line, j + 1, header?[j], $"{record[j]} is not finite");
            }
            rows.Add(values);
        }
        if (rows.Count == 0)
            throw new BadInputException(header is null ? $"{path}: the file is empty" : $"{path}: the file has a header but no data rows");
        var table = new double[rows.Count, columns];
        for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < columns; j++)
                table[i, j] = rows[i][j];
        return new CsvTable(header, table);
    }

    /// <summary>Writes the table (header first when there is one) to a temporary file beside
    /// <paramref name="path"/> and renames it into place, so a failure leaves nothing half-written.</summary>
    public void Write(string path)
    {
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream);
            using var csv = new CsvWriter(writer, Configuration);
            if (Header is not null)
            {
                foreach (var name in Header) csv.WriteField(name);
                csv.NextRecord();
            }
            for (int i = 0; i < Rows; i++)
            {
                for (int j = 0; j < Columns; j++) csv.WriteField(Values[i, j].ToString("R", CultureInfo.InvariantCulture));
                csv.NextRecord();
            }
        });
    }

    private static bool TryNumber(string cell, out double value) =>
        double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
}
