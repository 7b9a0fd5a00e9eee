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
    [InlineData("1,2\nNaN,4\n", "row 2, column 1", "not finite")]
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
