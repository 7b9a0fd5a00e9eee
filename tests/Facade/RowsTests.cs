using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>The <see cref="Rows"/> operations for mixture and polar targets: values against the same formula in
/// plain C#, gradients against central finite differences of <see cref="TargetDensity.Evaluate"/>.</summary>
public class RowsTests
{
    // a two-component mixture in polar form, using every new operation
    private static readonly TargetDensity Target = TargetDensity.FromFunction(2, z =>
    {
        var x = z.Column(0);
        var y = z.Column(1);
        var radius = (x.Square() + y.Square() + 1e-3).Pow(0.5);
        var angle = Rows.Atan2(y, x);
        var a = -0.5 * (radius - 2.0).Square() / 0.1 + Math.Log(0.3);
        var b = -0.5 * z.Square().SumColumns() + angle.Cos().Atan() + Math.Log(0.7);
        var capped = Rows.Min(Rows.Max(x, y.Clamp(-1, 1)), x.Pow(y.Square().Clamp(0, 2) + 1.0) + 3.0);
        return Rows.LogSumExp(a, b) + 0.1 * capped + (z * 0.5).LogSumExpColumns();
    }, "polar mixture");

    private static double Reference(double x, double y)
    {
        double radius = Math.Sqrt(x * x + y * y + 1e-3), angle = Math.Atan2(y, x);
        double a = -0.5 * (radius - 2) * (radius - 2) / 0.1 + Math.Log(0.3);
        double b = -0.5 * (x * x + y * y) + Math.Atan(Math.Cos(angle)) + Math.Log(0.7);
        double m = Math.Max(a, b);
        double capped = Math.Min(Math.Max(x, Math.Clamp(y, -1, 1)), Math.Pow(x, Math.Clamp(y * y, 0, 2) + 1) + 3);
        double columns = Math.Log(Math.Exp(0.5 * x) + Math.Exp(0.5 * y));
        return m + Math.Log(Math.Exp(a - m) + Math.Exp(b - m)) + 0.1 * capped + columns;
    }

    // points with x > 0 (x^p needs a positive base) away from the kinks of max, min and clamp
    private static readonly double[,] Points = { { 0.7, 0.3 }, { 1.9, -0.4 }, { 2.5, 1.7 }, { 0.3, -2.2 }, { 1.2, 0.55 } };

    [Fact]
    public void Values_match_the_formula_in_plain_CSharp()
    {
        var values = Target.Evaluate(Points);
        for (int i = 0; i < Points.GetLength(0); i++)
            Assert.True(Math.Abs(values[i] - Reference(Points[i, 0], Points[i, 1])) < 1e-12, $"row {i}: {values[i]} against {Reference(Points[i, 0], Points[i, 1])}");
    }

    [Fact]
    public void Gradients_match_central_finite_differences()
    {
        var gradient = Target.Gradient(Points);
        const double h = 1e-6;
        for (int i = 0; i < Points.GetLength(0); i++)
            for (int j = 0; j < 2; j++)
            {
                double x = Points[i, 0], y = Points[i, 1];
                double up = j == 0 ? Reference(x + h, y) : Reference(x, y + h);
                double down = j == 0 ? Reference(x - h, y) : Reference(x, y - h);
                double expected = (up - down) / (2 * h);
                Assert.True(Math.Abs(gradient[i, j] - expected) < 1e-6 * (1 + Math.Abs(expected)), $"row {i}, column {j}: {gradient[i, j]} against {expected}");
            }
    }

    [Fact]
    public void LogSumExp_does_not_overflow_and_refuses_bad_terms()
    {
        var large = TargetDensity.FromFunction(1, z => Rows.LogSumExp(z.Column(0) * 1000.0, z.Column(0) * 1000.0));
        Assert.Equal(1000 * 5 + Math.Log(2), large.Evaluate(new double[,] { { 5 } })[0], 9);
        var mismatched = TargetDensity.FromFunction(2, z => Rows.LogSumExp(z.Column(0), z).Column(0));
        Assert.Contains("term 1", Assert.Throws<ArgumentException>(() => mismatched.Evaluate(new double[,] { { 1, 2 } })).Message);
        var empty = TargetDensity.FromFunction(1, z => Rows.LogSumExp());
        Assert.Throws<ArgumentException>(() => empty.Evaluate(new double[,] { { 1 } }));
        var backwards = TargetDensity.FromFunction(1, z => z.Column(0).Clamp(1, -1));
        Assert.Contains("must not exceed", Assert.Throws<ArgumentException>(() => backwards.Evaluate(new double[,] { { 1 } })).Message);
    }
}
