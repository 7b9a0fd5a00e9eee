using Flows.Tensors;

namespace Flows.CSharp;

/// <summary>The learnable parameters a <see cref="CustomMap"/> reads: each is one value per column, as
/// <see cref="Rows"/> that combine with every input row.</summary>
public sealed class CustomParameters
{
    private readonly Params values;

    internal CustomParameters(Params values) => this.values = values;

    /// <summary>The parameter <paramref name="name"/>, shaped as one row that broadcasts over the input's rows.</summary>
    /// <exception cref="ArgumentException">The layer has no parameter of that name (the message lists them).</exception>
    public Rows this[string name]
    {
        get
        {
            ArgumentNullException.ThrowIfNull(name);
            if (!values.Contains(name))
                throw new ArgumentException($"no parameter '{name}'; the layer has {string.Join(", ", values.Names)}", nameof(name));
            Tensor t = values[name];
            return new(t.reshape(new[] { 1, t.numel }));
        }
    }
}
