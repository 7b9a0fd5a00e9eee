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
}
