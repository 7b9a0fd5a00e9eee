namespace Flows.Tensors.Backend.Cpu

open System
open Flows.Tensors

/// Strided iteration shared by the layout and broadcasting kernels: walk a shape row by row
/// (the last dimension is the row), keeping one running offset per operand.
module internal Strided =

    /// Merges neighbouring dimensions that every operand stores contiguously, so kernels see as
    /// few and as long rows as possible.
    let collapse (shape: int[]) (strides: int[][]) =
        if shape.Length <= 1 then shape, strides
        else
            let dims = Collections.Generic.List<int>()
            let strideLists = strides |> Array.map (fun _ -> Collections.Generic.List<int>())
            dims.Add shape[0]
            strides |> Array.iteri (fun k s -> strideLists[k].Add s[0])
            for i in 1 .. shape.Length - 1 do
                let last = dims.Count - 1
                let mergeable = strides |> Array.mapi (fun k s -> strideLists[k][last] = s[i] * shape[i]) |> Array.forall id
                if mergeable then
                    dims[last] <- dims[last] * shape[i]
                    strides |> Array.iteri (fun k s -> strideLists[k][last] <- s[i])
                else
                    dims.Add shape[i]
                    strides |> Array.iteri (fun k s -> strideLists[k].Add s[i])
            dims.ToArray(), strideLists |> Array.map _.ToArray()

    /// Calls `row offsets` once per row of `shape` (all dimensions but the last), with the start
    /// offset of that row for each operand; `bases` are the operands' starting offsets.
    let rows (shape: int[]) (strides: int[][]) (bases: int[]) (row: int[] -> unit) =
        let rank = shape.Length
        if Shape.numel shape > 0 then
            if rank <= 1 then row (Array.copy bases)
            else
                let outer = rank - 1
                let index = Array.zeroCreate<int> outer
                let offsets = Array.copy bases
                let count = Shape.numel shape[.. outer - 1]
                for _ in 1 .. count do
                    row offsets
                    // odometer increment over the outer dimensions
                    let mutable d = outer - 1
                    let mutable carry = true
                    while carry && d >= 0 do
                        index[d] <- index[d] + 1
                        for k in 0 .. offsets.Length - 1 do offsets[k] <- offsets[k] + strides[k][d]
                        if index[d] < shape[d] then carry <- false
                        else
                            for k in 0 .. offsets.Length - 1 do offsets[k] <- offsets[k] - strides[k][d] * shape[d]
                            index[d] <- 0
                            d <- d - 1

    /// Copies `shape` elements read from `src` (at `srcBase` with `srcStrides`) into `dst`.
    let copy (src: 'T[]) (srcBase: int) (srcStrides: int[]) (dst: 'T[]) (dstBase: int) (dstStrides: int[]) (shape: int[]) =
        if shape.Length = 0 then dst[dstBase] <- src[srcBase]
        else
            let shape, strides = collapse shape [| srcStrides; dstStrides |]
            let n = shape[shape.Length - 1]
            let ss, ds = strides[0][shape.Length - 1], strides[1][shape.Length - 1]
            if shape.Length = 2 && n <= 16 then
                // narrow rows (a coupling's columns, a concatenation's parts): one loop, no call per row
                let sr, dr = strides[0][0], strides[1][0]
                for i in 0 .. shape[0] - 1 do
                    let mutable s = srcBase + i * sr
                    let mutable t = dstBase + i * dr
                    for _ in 1 .. n do
                        dst[t] <- src[s]
                        s <- s + ss
                        t <- t + ds
            else
                rows shape strides [| srcBase; dstBase |] (fun o ->
                    if ss = 1 && ds = 1 then Array.Copy(src, o[0], dst, o[1], n)
                    elif ss = 0 && ds = 1 then Array.Fill(dst, src[o[0]], o[1], n)
                    else
                        let mutable s = o[0]
                        let mutable t = o[1]
                        for _ in 1 .. n do
                            dst[t] <- src[s]
                            s <- s + ss
                            t <- t + ds)
