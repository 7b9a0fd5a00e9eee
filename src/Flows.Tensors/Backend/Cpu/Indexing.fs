namespace Flows.Tensors.Backend.Cpu

open System.Numerics
open Flows.Tensors
open Flows.Tensors.Backend.Cpu.GenericMath

/// Gather, scatter-add and sorted search, on the [outer, n, inner] view along the indexed dimension.
module internal Indexing =

    let private checkIndex (op: string) (shape: int[]) (dim: int) (indexShape: int[]) (j: int) =
        if j < 0 || j >= shape[dim] then
            invalidArg "index" $"{op}: index {j} is out of range for dimension {dim} of size {shape[dim]} (index {Shape.show indexShape}, tensor {Shape.show shape})"

    /// result[o, j, i] = x[o, index[o, j, i], i]; index has x's shape except along `dim`.
    let gather (x: 'T[]) (shape: int[]) (dim: int) (index: int[]) (indexShape: int[]) : 'T[] =
        let outer, n, inner = Reduce.split shape dim
        let m = indexShape[dim]
        let r = BufferPool.Rent<'T> index.Length
        for o in 0 .. outer - 1 do
            for j in 0 .. m - 1 do
                for i in 0 .. inner - 1 do
                    let at = (o * m + j) * inner + i
                    let src = index[at]
                    checkIndex "gather" shape dim indexShape src
                    r[at] <- x[(o * n + src) * inner + i]
        r

    /// A zero tensor of `shape` with x[o, j, i] added at [o, index[o, j, i], i]; repeats add up.
    let scatterAdd<'T when 'T :> INumber<'T>> (x: 'T[]) (dim: int) (index: int[]) (indexShape: int[]) (shape: int[]) : 'T[] =
        let outer, n, inner = Reduce.split shape dim
        let m = indexShape[dim]
        let r = BufferPool.Rent<'T>(Shape.numel shape)
        System.Array.Clear r
        for o in 0 .. outer - 1 do
            for j in 0 .. m - 1 do
                for i in 0 .. inner - 1 do
                    let at = (o * m + j) * inner + i
                    let dst = index[at]
                    checkIndex "scatterAdd" shape dim indexShape dst
                    let k = (o * n + dst) * inner + i
                    r[k] <- r[k] + x[at]
        r

    /// For each value, how many entries of its sorted row lie below it (`right`: at or below).
    /// `sorted` is [rows, k] (rows = 1 shares one row), `values` is [rows, m].
    let searchSorted<'T when 'T :> INumber<'T>> (sorted: 'T[]) (k: int) (values: 'T[]) (m: int) (right: bool) : int[] =
        let rows = if m = 0 then 0 else values.Length / m
        let shared = sorted.Length = k
        let r = Array.zeroCreate<int> values.Length
        for row in 0 .. rows - 1 do
            let baseAt = if shared then 0 else row * k
            for j in 0 .. m - 1 do
                let v = values[row * m + j]
                let mutable lo = 0
                let mutable hi = k
                while lo < hi do
                    let mid = (lo + hi) >>> 1
                    let s = sorted[baseAt + mid]
                    if (if right then le s v else lt s v) then lo <- mid + 1 else hi <- mid
                r[row * m + j] <- lo
        r
