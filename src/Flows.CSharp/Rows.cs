using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>
/// A differentiable batch of numbers for writing a target log-density in C# (see
/// <see cref="TargetDensity.FromFunction"/>): the input holds one row of <c>d</c> values per sample,
/// <see cref="Column"/> and <see cref="SumColumns"/> give one value per row, and the arithmetic
/// below is recorded so that the façade can differentiate the result. Immutable.
/// </summary>
public sealed class Rows
{
    internal Rows(Tensor tensor) => Tensor = tensor;

    internal Tensor Tensor { get; }

    /// <summary>Number of rows (samples).</summary>
    public int Count => Tensor.shape[0];

    /// <summary>Columns per row: <c>d</c> for the input, 1 for one value per row.</summary>
    public int Columns => Tensor.dim == 1 ? 1 : Tensor.shape[1];

    /// <summary>Column <paramref name="index"/> of the input, one value per row.</summary>
    public Rows Column(int index)
    {
        if (Tensor.dim != 2 || index < 0 || index >= Tensor.shape[1])
            throw new ArgumentOutOfRangeException(nameof(index), index, $"must be a column of the {Columns}-column input");
        return new(Tensor.narrow(1, index, 1).squeeze(1));
    }

    /// <summary>The sum of every row's columns, one value per row.</summary>
    public Rows SumColumns() => Tensor.dim == 1 ? this : new(Tensor.sum(1, null));

    /// <summary>Element-wise sum.</summary>
    public static Rows operator +(Rows a, Rows b) => new(a.Tensor + b.Tensor);
    /// <summary>Element-wise difference.</summary>
    public static Rows operator -(Rows a, Rows b) => new(a.Tensor - b.Tensor);
    /// <summary>Element-wise product.</summary>
    public static Rows operator *(Rows a, Rows b) => new(a.Tensor * b.Tensor);
    /// <summary>Element-wise quotient.</summary>
    public static Rows operator /(Rows a, Rows b) => new(a.Tensor / b.Tensor);
    /// <summary>Adds a number to every element.</summary>
    public static Rows operator +(Rows a, double s) => new(a.Tensor + s);
    /// <summary>Adds a number to every element.</summary>
    public static Rows operator +(double s, Rows a) => new(a.Tensor + s);
    /// <summary>Subtracts a number from every element.</summary>
    public static Rows operator -(Rows a, double s) => new(a.Tensor - s);
    /// <summary>A number minus every element.</summary>
    public static Rows operator -(double s, Rows a) => new(s - a.Tensor);
    /// <summary>Multiplies every element by a number.</summary>
    public static Rows operator *(Rows a, double s) => new(a.Tensor * s);
    /// <summary>Multiplies every element by a number.</summary>
    public static Rows operator *(double s, Rows a) => new(a.Tensor * s);
    /// <summary>Divides every element by a number.</summary>
    public static Rows operator /(Rows a, double s) => new(a.Tensor / s);
    /// <summary>A number divided by every element.</summary>
    public static Rows operator /(double s, Rows a) => new(s / a.Tensor);
    /// <summary>Negates every element.</summary>
    public static Rows operator -(Rows a) => new(-a.Tensor);

    /// <summary>e to the power of every element.</summary>
    public Rows Exp() => new(Tensor.exp());
    /// <summary>Natural logarithm of every element.</summary>
    public Rows Log() => new(Tensor.log());
    /// <summary>Square root of every element.</summary>
    public Rows Sqrt() => new(Tensor.sqrt());
    /// <summary>Square of every element.</summary>
    public Rows Square() => new(Tensor.square());
    /// <summary>Absolute value of every element.</summary>
    public Rows Abs() => new(Tensor.abs());
    /// <summary>Sine of every element.</summary>
    public Rows Sin() => new(Tensor.sin());
    /// <summary>Cosine of every element.</summary>
    public Rows Cos() => new(Tensor.cos());
    /// <summary>Hyperbolic tangent of every element.</summary>
    public Rows Tanh() => new(Tensor.tanh());
    /// <summary>Logistic sigmoid of every element.</summary>
    public Rows Sigmoid() => new(Tensor.sigmoid());
    /// <summary>log(1 + eˣ) of every element.</summary>
    public Rows Softplus() => new(Tensor.softplus());
    /// <summary>Arctangent of every element.</summary>
    public Rows Atan() => new(Tensor.atan());
    /// <summary>Every element to the power <paramref name="exponent"/> (elements must be positive unless the
    /// exponent is a whole number).</summary>
    public Rows Pow(double exponent) => new(Tensor.Pow(Tensor, exponent));
    /// <summary>Every element to the power of the matching element of <paramref name="exponent"/> (elements must be positive).</summary>
    public Rows Pow(Rows exponent) => new(Tensor.Pow(Tensor, Checked(exponent, nameof(exponent)).Tensor));
    /// <summary>Every element clamped into [<paramref name="low"/>, <paramref name="high"/>]; the gradient is zero
    /// where an element was clamped.</summary>
    public Rows Clamp(double low, double high)
    {
        if (!(low <= high)) throw new ArgumentException($"low ({low}) must not exceed high ({high})", nameof(low));
        return new(Tensor.clamp(low, high));
    }
    /// <summary>log Σ exp over each row's columns, computed without overflow: one value per row.</summary>
    public Rows LogSumExpColumns() => Tensor.dim == 1 ? this : new(Reductions.logSumExp(1, Tensor));

    /// <summary>Element-wise maximum.</summary>
    public static Rows Max(Rows a, Rows b) => new(Checked(a, nameof(a)).Tensor.max(Checked(b, nameof(b)).Tensor));
    /// <summary>Element-wise minimum.</summary>
    public static Rows Min(Rows a, Rows b) => new(Checked(a, nameof(a)).Tensor.min(Checked(b, nameof(b)).Tensor));
    /// <summary>The angle of the point (<paramref name="x"/>, <paramref name="y"/>) in (−π, π], element-wise.</summary>
    public static Rows Atan2(Rows y, Rows x) => new(Checked(y, nameof(y)).Tensor.atan2(Checked(x, nameof(x)).Tensor));

    /// <summary>log(e^a + e^b + …) element-wise, computed without overflow: the log-density of a mixture from the
    /// log-densities of its weighted components, e.g. <c>Rows.LogSumExp(logA + Math.Log(0.3), logB + Math.Log(0.7))</c>.</summary>
    /// <param name="terms">At least one term, all of the same shape.</param>
    public static Rows LogSumExp(params Rows[] terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        if (terms.Length == 0) throw new ArgumentException("at least one term is needed", nameof(terms));
        var tensors = terms.Select((t, i) => Checked(t, $"{nameof(terms)}[{i}]").Tensor).ToArray();
        for (int i = 1; i < tensors.Length; i++)
            if (!tensors[i].shape.SequenceEqual(tensors[0].shape))
                throw new ArgumentException($"term {i} has shape [{string.Join(", ", tensors[i].shape)}]; term 0 has [{string.Join(", ", tensors[0].shape)}]", nameof(terms));
        return new(Reductions.logSumExp(0, Tensor.stack(tensors, 0)));
    }

    private static Rows Checked(Rows? rows, string name) => rows ?? throw new ArgumentNullException(name);
}
