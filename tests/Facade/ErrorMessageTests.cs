using System.Text.RegularExpressions;
using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

/// <summary>Errors a C# user meets say what was wrong in C# terms: no F# union case names, options or type names.</summary>
public class ErrorMessageTests
{
    // "Some(3)", "Text \"abc\"", "Int 3", "FSharpOption`1", "Microsoft.FSharp…": F# spellings a C# user never wrote
    private static readonly Regex FSharpSpelling = new(@"\b(Some|None|Int|Float|Text|Ints|Floats|Cuda|Cpu|Float32|Float64)\b ?[\(""\[0-9]|FSharp|`1");

    private static string MessageOf(Action call) => Assert.ThrowsAny<Exception>(call).Message;

    public static TheoryData<string> Calls() => new(Cases.Keys);

    private static readonly Dictionary<string, Action> Cases = new()
    {
        ["a setting of the wrong kind"] = () =>
            Layer.FromSettings("maf", new Dictionary<string, object>(Layer.Maf(2).Settings) { ["hidden"] = "abc" }),
        ["a setting of an unsupported type"] = () =>
            Layer.FromSettings("maf", new Dictionary<string, object>(Layer.Maf(2).Settings) { ["hidden"] = 1.5f }),
        ["an unknown catalogue name"] = () => DensityModel.CreateFromCatalogue("no-such-flow", 2),
        ["a NaN in the data"] = () => DensityModel.CreateRealNvp(2, layers: 2).Fit(new float[,] { { 0, 1 }, { float.NaN, 2 } }),
        ["too few columns"] = () => DensityModel.CreateRealNvp(2, layers: 2).LogProb(new float[,] { { 0 } }),
        ["an unknown device"] = () => DensityModel.CreateRealNvp(2, layers: 2).To("gpu"),
        ["a missing model folder"] = () => DensityModel.Load(Path.Combine(Path.GetTempPath(), $"flows-missing-{Guid.NewGuid():N}")),
        ["a target of another dimension"] = () =>
            DensityModel.CreateRealNvp(2, layers: 2).FitToDensity(TargetDensity.FromFunction(3, z => z.Square().SumColumns())),
        ["a context for an unconditional model"] = () =>
            DensityModel.CreateRealNvp(2, layers: 2).LogProb(new float[,] { { 0, 1 } }, new float[,] { { 1 } }),
        ["a negative sample count"] = () => DensityModel.CreateRealNvp(2, layers: 2).Sample(-1),
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public void The_message_uses_no_FSharp_spelling(string call)
    {
        var message = MessageOf(Cases[call]);
        Assert.False(FSharpSpelling.IsMatch(message), $"{call}: \"{message}\"");
        Assert.False(string.IsNullOrWhiteSpace(message));
    }

    [Fact]
    public void A_setting_of_the_wrong_kind_is_described_by_its_value()
    {
        var message = MessageOf(Cases["a setting of the wrong kind"]);
        Assert.Contains("setting 'hidden'", message);
        Assert.Contains("the text \"abc\"", message);
    }
}
