#if !NET9_0_OR_GREATER
namespace System.Runtime.CompilerServices;

/// <summary>net8.0 lacks this attribute (.NET 9 added it); C# 13 compilers honour it by name, so callers of the
/// net8.0 build resolve <c>Fit(data, null)</c> as callers of the net10.0 build do.</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Constructor | AttributeTargets.Property, Inherited = false)]
internal sealed class OverloadResolutionPriorityAttribute(int priority) : Attribute
{
    /// <summary>Higher wins among otherwise equal candidates.</summary>
    public int Priority { get; } = priority;
}
#endif
