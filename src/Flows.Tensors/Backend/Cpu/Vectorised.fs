namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics

/// Element loops over System.Numerics.Vector<T> for the maps System.Numerics.Tensors lacks
/// (masks, selections, piecewise activations): the vector body on whole vectors, the scalar body
/// on the tail. Inlined so the lambdas compile into the loop.
module Vectorised =

    /// r[i] = f(x[i]).
    let inline map<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        ([<InlineIfLambda>] vf: Vector<'T> -> Vector<'T>) ([<InlineIfLambda>] sf: 'T -> 'T) (x: 'T[]) (xOff: int) (r: 'T[]) (rOff: int) (n: int) =
        let w = Vector<'T>.Count
        let mutable i = 0
        while i <= n - w do
            (vf (Vector<'T>(x, xOff + i))).CopyTo(r, rOff + i)
            i <- i + w
        while i < n do
            r[rOff + i] <- sf x[xOff + i]
            i <- i + 1

    /// r[i] = f(a[i], b[i]).
    let inline map2<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        ([<InlineIfLambda>] vf: Vector<'T> -> Vector<'T> -> Vector<'T>) ([<InlineIfLambda>] sf: 'T -> 'T -> 'T)
        (a: 'T[]) (aOff: int) (b: 'T[]) (bOff: int) (r: 'T[]) (rOff: int) (n: int) =
        let w = Vector<'T>.Count
        let mutable i = 0
        while i <= n - w do
            (vf (Vector<'T>(a, aOff + i)) (Vector<'T>(b, bOff + i))).CopyTo(r, rOff + i)
            i <- i + w
        while i < n do
            r[rOff + i] <- sf a[aOff + i] b[bOff + i]
            i <- i + 1

    /// r[i] = f(a[i], b[i], c[i]).
    let inline map3<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        ([<InlineIfLambda>] vf: Vector<'T> -> Vector<'T> -> Vector<'T> -> Vector<'T>) ([<InlineIfLambda>] sf: 'T -> 'T -> 'T -> 'T)
        (a: 'T[]) (b: 'T[]) (c: 'T[]) (r: 'T[]) (n: int) =
        let w = Vector<'T>.Count
        let mutable i = 0
        while i <= n - w do
            (vf (Vector<'T>(a, i)) (Vector<'T>(b, i)) (Vector<'T>(c, i))).CopyTo(r, i)
            i <- i + w
        while i < n do
            r[i] <- sf a[i] b[i] c[i]
            i <- i + 1

    /// 1 where the mask lanes are set, else 0.
    let inline ones<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (mask: Vector<'T>) =
        Vector.ConditionalSelect<'T>(mask, Vector<'T>.One, Vector<'T>.Zero)
