using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>The one place that turns C# arrays into tensors and back, checking the data.</summary>
internal static class ArrayConversions
{
    /// <summary>Rows of <paramref name="data"/> as a float32 tensor; rejects empty data, the wrong
    /// number of columns and NaN/infinite values, naming the row and column.</summary>
    public static Tensor ToRows(float[,] data, int dimension, string parameterName) =>
        ToRows(data.GetLength(0), data.GetLength(1), dimension, parameterName, data, (d, i, j) => d[i, j]);

    /// <summary>Rows of <paramref name="data"/> as a float64 tensor (standardised before any rounding to
    /// float32), checked like the float overload.</summary>
    public static Tensor ToRows(double[,] data, int dimension, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(data, parameterName);
        int rows = data.GetLength(0), columns = data.GetLength(1);
        CheckShape(rows, columns, dimension, parameterName);
        var flat = new double[rows * columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                flat[i * columns + j] = Checked(data[i, j], i, j, parameterName);
        return TensorOf.doubles(flat, new[] { rows, columns });
    }

    /// <summary>Rows given one array each; a row of the wrong length is named.</summary>
    public static Tensor ToRows(IEnumerable<float[]> data, int dimension, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(data, parameterName);
        var rows = new List<float[]>();
        foreach (var row in data)
        {
            if (row is null)
                throw new ArgumentException($"row {rows.Count} is null", parameterName);
            if (row.Length != dimension)
                throw new ArgumentException($"row {rows.Count} has {row.Length} values; expected {dimension} columns", parameterName);
            rows.Add(row);
        }
        return ToRows(rows.Count, dimension, dimension, parameterName, rows, (d, i, j) => d[i][j]);
    }

    private static Tensor ToRows<TSource>(int rows, int columns, int dimension, string parameterName, TSource data, Func<TSource, int, int, double> at)
    {
        ArgumentNullException.ThrowIfNull(data, parameterName);
        CheckShape(rows, columns, dimension, parameterName);
        var flat = new float[rows * columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
                flat[i * columns + j] = (float)Checked(at(data, i, j), i, j, parameterName);
        return TensorOf.floats(flat, new[] { rows, columns });
    }

    private static void CheckShape(int rows, int columns, int dimension, string parameterName)
    {
        if (rows == 0)
            throw new ArgumentException("the data has no rows", parameterName);
        if (columns != dimension)
            throw new ArgumentException($"expected {dimension} columns, got {columns}", parameterName);
    }

    private static double Checked(double v, int row, int column, string parameterName) =>
        double.IsFinite(v) && float.IsFinite((float)v) ? v
        : throw new ArgumentException($"row {row}, column {column} is {v}; every value must be finite (and within float range)", parameterName);

    /// <summary>A [rows; columns] tensor as a float[,].</summary>
    public static float[,] ToMatrix(Tensor rows)
    {
        var flat = rows.toArray32();
        int n = rows.shape[0], d = rows.shape[1];
        var result = new float[n, d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                result[i, j] = flat[i * d + j];
        return result;
    }
}
