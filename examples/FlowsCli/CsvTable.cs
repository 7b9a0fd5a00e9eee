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

    /// <summary>Reads a whole CSV file of numbers (see <see cref="CsvRowReader"/> for what is checked).</summary>
    /// <exception cref="BadInputException">A missing or empty file, a ragged row, a cell that is empty, not a
    /// number, NaN, infinite or beyond float32's range; the message names the file, row and column.</exception>
    public static CsvTable Read(string path, HeaderMode header = HeaderMode.Auto)
    {
        using var reader = new CsvRowReader(path, header);
        return new CsvTable(reader.Header, reader.ReadChunk(int.MaxValue)!);
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
}
