namespace Flows.Cli.Tests;

public sealed class CsvTableTests
{
    [Fact]
    public void A_header_row_is_optional_and_values_round_trip_exactly()
    {
        using var folder = new TempFolder();
        var values = new double[,] { { 0.1, -2.5e-7 }, { 3.0, Math.PI } };
        foreach (var header in new[] { null, new[] { "x", "y" } })
        {
            var path = folder.File("t.csv");
            new CsvTable(header, values).Write(path);
            var back = CsvTable.Read(path);
            Assert.Equal(header, back.Header);
            Assert.Equal(values, back.Values);
        }
    }

    [Theory]
    [InlineData("1,2\n3\n", "row 2, column 2", "has 1 cells")]
    [InlineData("a,b\n1,2\n3,4,5\n", "row 3, column 3", "has 3 cells")]
    [InlineData("a,b\n1,2\n3,oops\n", "row 3, column 2 ('b')", "'oops' is not a number")]
    [InlineData("1,2\nNaN,4\n", "row 2, column 1", "'NaN' is not a number (NaN)")]
    [InlineData("1,2\n3,Infinity\n", "row 2, column 2", "infinite")]
    [InlineData("1,2\n3,1e400\n", "row 2, column 2", "infinite")]
    [InlineData("x,y\n1,2\n3.41e38,4\n", "row 3, column 1 ('x')", "beyond the float32 range")]
    [InlineData("x,y\n1,2\n3,-1e39\n", "row 3, column 2 ('y')", "beyond the float32 range")]
    [InlineData("x,y\n1,2\n,4\n", "row 3, column 1 ('x')", "the cell is empty")]
    [InlineData("x,y\n1,2\n\n3,4\n", "row 3 is blank", "may only end the file")]
    [InlineData("x,2\n1,2\n", "row 1, column 2", "mixes numbers and text")]
    [InlineData("1,y\n1,2\n", "row 1, column 2", "column 2 'y' is not a number, column 1 holds '1'")]
    [InlineData("x,y,x\n1,2,3\n", "row 1, column 3 ('x')", "the column name repeats column 1")]
    [InlineData("", "", "the file is empty")]
    [InlineData("a,b\n", "", "header but no data rows")]
    public void Malformed_files_are_rejected_naming_the_row_and_column(string contents, string where, string what)
    {
        using var folder = new TempFolder();
        var path = folder.File("bad.csv", contents);
        var e = Assert.Throws<BadInputException>(() => CsvTable.Read(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(where, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void The_float32_range_ends_the_accepted_values_and_blank_lines_may_end_the_file()
    {
        using var folder = new TempFolder();
        var path = folder.File("edge.csv", "x\n3.4e38\n-3.4e38\n1e-300\n\n\n");
        Assert.Equal(new[] { 3.4e38, -3.4e38, 1e-300 }, CsvTable.Read(path).Values.Cast<double>().ToArray());
    }

    [Fact]
    public void Header_flags_override_the_guess_from_the_first_row()
    {
        using var folder = new TempFolder();
        var numeric = folder.File("numeric.csv", "1,2\n3,4\n");
        Assert.Null(CsvTable.Read(numeric).Header);
        var named = CsvTable.Read(numeric, HeaderMode.Present);
        Assert.Equal(new[] { "1", "2" }, named.Header);
        Assert.Equal(new double[,] { { 3, 4 } }, named.Values);

        var text = folder.File("text.csv", "x,y\n3,4\n");
        Assert.Equal(new[] { "x", "y" }, CsvTable.Read(text).Header);
        var e = Assert.Throws<BadInputException>(() => CsvTable.Read(text, HeaderMode.Absent));
        Assert.Contains("row 1, column 1: 'x' is not a number (if row 1 holds column names, pass --header)", e.Message);

        // a mixed first row is an error without a flag, and fine with one
        var mixed = folder.File("mixed.csv", "x,2\n3,4\n");
        Assert.Throws<BadInputException>(() => CsvTable.Read(mixed));
        Assert.Equal(new[] { "x", "2" }, CsvTable.Read(mixed, HeaderMode.Present).Header);
    }

    [Fact]
    public void A_byte_order_mark_and_crlf_line_ends_read_as_plain_lf()
    {
        using var folder = new TempFolder();
        var plain = folder.File("plain.csv", "x,y\n0.1,-2\n1e-3,7\n");
        var windows = folder.File("windows.csv");
        File.WriteAllBytes(windows, [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("x,y\r\n0.1,-2\r\n1e-3,7\r\n")]);
        var a = CsvTable.Read(plain);
        var b = CsvTable.Read(windows);
        Assert.Equal(new[] { "x", "y" }, b.Header);
        Assert.Equal(a.Values, b.Values);
    }

    [Fact]
    public void Chunks_of_a_streamed_file_are_the_rows_of_the_whole_table()
    {
        using var folder = new TempFolder();
        var lines = Enumerable.Range(0, 23).Select(i => $"{i},{i * 0.5}");
        var path = folder.File("rows.csv", "a,b\n" + string.Join("\n", lines) + "\n");
        var whole = CsvTable.Read(path).Values;
        using var reader = new CsvRowReader(path);
        var seen = new List<double>();
        int chunks = 0;
        while (reader.ReadChunk(5) is { } chunk)
        {
            chunks++;
            Assert.InRange(chunk.GetLength(0), 1, 5);
            seen.AddRange(chunk.Cast<double>());
        }
        Assert.Equal(5, chunks);
        Assert.Equal(23, reader.RowsRead);
        Assert.Equal(whole.Cast<double>(), seen);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var e = Assert.Throws<BadInputException>(() => CsvTable.Read("/no/such/file.csv"));
        Assert.Contains("/no/such/file.csv: no such file", e.Message);
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temporary()
    {
        using var folder = new TempFolder();
        var path = folder.File("out.csv", "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.WriteByte(65);
            throw new InvalidOperationException("disk on fire");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(folder.Root));
    }
}
