namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu.GenericMath

/// Reductions and scans along one dimension, on the [outer, n, inner] view of a tensor.
module internal Reduce =

    /// Sizes before, along and after dimension `dim`.
    let split (shape: int[]) (dim: int) =
        Shape.numel shape[.. dim - 1], shape[dim], Shape.numel shape[dim + 1 ..]

    /// Float reduction along `dim` (sum, product, max, min); the result keeps `dim` as size 1.
    let values<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: ReduceOp) (x: 'T[]) (shape: int[]) (dim: int) : 'T[] =
        let outer, n, inner = split shape dim
        let r = BufferPool.Rent<'T>(outer * inner)
        for o in 0 .. outer - 1 do
            let dst = Span<'T>(r, o * inner, inner)
            if inner = 1 then
                let row = ReadOnlySpan<'T>(x, o * n, n)
                dst[0] <-
                    match op with
                    | ReduceOp.Sum -> TensorPrimitives.Sum row
                    | ReduceOp.Prod -> if n = 0 then 'T.One else TensorPrimitives.Product row
                    | ReduceOp.Max -> if n = 0 then 'T.NegativeInfinity else TensorPrimitives.Max row
                    | ReduceOp.Min -> if n = 0 then 'T.PositiveInfinity else TensorPrimitives.Min row
                    | ReduceOp.ArgMax | ReduceOp.ArgMin -> invalidOp "arg reductions return indices"
            elif op = ReduceOp.Sum then
                // column sums (bias gradients): one inlined vector loop per row, no call per row
                dst.Clear()
                for j in 0 .. n - 1 do
                    Vectorised.map2 (fun (acc: Vector<'T>) (v: Vector<'T>) -> acc + v) (fun (acc: 'T) (v: 'T) -> acc + v)
                        r (o * inner) x ((o * n + j) * inner) r (o * inner) inner
            else
                match op with
                | ReduceOp.Sum -> dst.Clear()
                | ReduceOp.Prod -> dst.Fill 'T.One
                | ReduceOp.Max -> dst.Fill 'T.NegativeInfinity
                | ReduceOp.Min -> dst.Fill 'T.PositiveInfinity
                | ReduceOp.ArgMax | ReduceOp.ArgMin -> invalidOp "arg reductions return indices"
                for j in 0 .. n - 1 do
                    let src = ReadOnlySpan<'T>(x, (o * n + j) * inner, inner)
                    match op with
                    | ReduceOp.Sum -> TensorPrimitives.Add(ro dst, src, dst)
                    | ReduceOp.Prod -> TensorPrimitives.Multiply(ro dst, src, dst)
                    | ReduceOp.Max -> TensorPrimitives.Max(ro dst, src, dst)
                    | ReduceOp.Min -> TensorPrimitives.Min(ro dst, src, dst)
                    | ReduceOp.ArgMax | ReduceOp.ArgMin -> ()
        r

    /// Index of the largest (or smallest) value along `dim`; the first one on ties, NaN wins.
    let indices<'T when 'T :> IFloatingPointIeee754<'T>> (largest: bool) (x: 'T[]) (shape: int[]) (dim: int) : int[] =
        let outer, n, inner = split shape dim
        if not (n > 0) then Shape.fail "argmax" ($"cannot reduce an empty dimension {dim} of {Shape.show shape}")
        let r = Array.zeroCreate<int> (outer * inner)
        for o in 0 .. outer - 1 do
            for i in 0 .. inner - 1 do
                let mutable best = 0
                let mutable bestValue = x[o * n * inner + i]
                for j in 1 .. n - 1 do
                    let v = x[(o * n + j) * inner + i]
                    let better = if largest then gt v bestValue else lt v bestValue
                    if not ('T.IsNaN bestValue) && (better || 'T.IsNaN v) then
                        best <- j
                        bestValue <- v
                r[o * inner + i] <- best
        r

    /// Sums `x` down to `target`, a shape that broadcasts to `shape`.
    let sumTo<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (x: 'T[]) (shape: int[]) (target: int[]) : 'T[] =
        let mutable data = x
        let mutable current = shape
        // leading dimensions that broadcasting added
        let extra = shape.Length - target.Length
        if extra > 0 then
            let lead = Shape.numel shape[.. extra - 1]
            let rest = shape[extra ..]
            data <- values ReduceOp.Sum data [| lead; Shape.numel rest |] 0
            current <- rest
        for d in 0 .. target.Length - 1 do
            if target[d] = 1 && current[d] <> 1 then
                data <- values ReduceOp.Sum data current d
                current <- Shape.reduceDim current d true
        data

    /// Inclusive prefix sums along `dim`, from the end when `reverse`.
    let cumsum<'T when 'T :> IFloatingPointIeee754<'T>> (x: 'T[]) (shape: int[]) (dim: int) (reverse: bool) : 'T[] =
        let outer, n, inner = split shape dim
        let r = Array.zeroCreate<'T> x.Length
        if inner = 1 then
            // along the last dimension: a plain running sum per row (a span call per element costs more than the add)
            for o in 0 .. outer - 1 do
                let mutable acc = 'T.Zero
                for step in 0 .. n - 1 do
                    let at = o * n + (if reverse then n - 1 - step else step)
                    acc <- acc + x[at]
                    r[at] <- acc
        else
            for o in 0 .. outer - 1 do
                for step in 0 .. n - 1 do
                    let j = if reverse then n - 1 - step else step
                    let at = (o * n + j) * inner
                    let src = ReadOnlySpan<'T>(x, at, inner)
                    let dst = Span<'T>(r, at, inner)
                    if step = 0 then src.CopyTo dst
                    else
                        let prev = if reverse then at + inner else at - inner
                        TensorPrimitives.Add(ReadOnlySpan<'T>(r, prev, inner), src, dst)
        r
