namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics

/// Comparisons through the .NET generic-math interfaces: F#'s own `<` on a type parameter would
/// go through structural comparison and box every element.
module GenericMath =

    let inline lt<'T when 'T :> IComparisonOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_LessThan(a, b)
    let inline gt<'T when 'T :> IComparisonOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_GreaterThan(a, b)
    let inline le<'T when 'T :> IComparisonOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_LessThanOrEqual(a, b)
    let inline ge<'T when 'T :> IComparisonOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_GreaterThanOrEqual(a, b)
    let inline eq<'T when 'T :> IEqualityOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_Equality(a, b)
    let inline ne<'T when 'T :> IEqualityOperators<'T, 'T, bool>> (a: 'T) (b: 'T) = 'T.op_Inequality(a, b)

    /// A read-only view of a span (F# does not apply the implicit conversion).
    let inline ro (s: Span<'T>) : ReadOnlySpan<'T> = Span<'T>.op_Implicit s
