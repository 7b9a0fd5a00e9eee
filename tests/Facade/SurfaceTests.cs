using System.Reflection;
using Flows.CSharp;
using Xunit;

namespace Flows.Facade.Tests;

public class SurfaceTests
{
    [Fact]
    public void No_public_signature_of_the_facade_mentions_an_FSharp_or_core_type()
    {
        var facade = typeof(DensityModel).Assembly;
        // an F# type, or a type of the core assemblies, anywhere in a signature (arrays and generics included)
        bool Foreign(Type t) =>
            t.HasElementType ? Foreign(t.GetElementType()!)
            : (t.IsGenericType && t.GetGenericArguments().Any(Foreign))
              || (t.Namespace ?? "").StartsWith("Microsoft.FSharp")
              || (t.Assembly != facade && (t.Namespace ?? "").StartsWith("Flows"));
        var offenders = new List<string>();
        foreach (var type in facade.GetExportedTypes())
            foreach (var member in type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                var types = member switch
                {
                    MethodBase m => m.GetParameters().Select(p => p.ParameterType).Concat(m is MethodInfo mi ? new[] { mi.ReturnType } : Array.Empty<Type>()),
                    PropertyInfo p => new[] { p.PropertyType },
                    FieldInfo f => new[] { f.FieldType },
                    _ => Array.Empty<Type>(),
                };
                offenders.AddRange(types.Where(Foreign).Select(t => $"{type.Name}.{member.Name}: {t}"));
            }
        Assert.Empty(offenders);
    }
}
