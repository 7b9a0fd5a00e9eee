using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>The one place that turns C# arrays into tensors and back, checking the data.</summary>
internal static class ArrayConversions
{
    /// <summary>Rows of <paramref name="data"/> as a float32 tensor; rejects empty data, the wrong
    /// number of columns and NaN/infinite values, naming the row and column.</summary>
    public static Tensor ToRows(float[,] data, int dimension, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(data, parameterName);
        int rows = data.GetLength(0), columns = data.GetLength(1);
        if (rows == 0)
            throw new ArgumentException("the data has no rows", parameterName);
        if (columns != dimension)
            throw new ArgumentException($"expected {dimension} columns, got {columns}", parameterName);
        var flat = new float[rows * columns];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < columns; j++)
            {
                float v = data[i, j];
                if (!float.IsFinite(v))
                    throw new ArgumentException($"row {i}, column {j} is {v}; every value must be finite", parameterName);
                flat[i * columns + j] = v;
            }
        return TensorOf.floats(flat, new[] { rows, columns });
    }

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
