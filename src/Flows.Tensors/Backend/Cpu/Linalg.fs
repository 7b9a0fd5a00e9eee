namespace Flows.Tensors.Backend.Cpu

open System.Numerics
open Flows.Tensors
open Flows.Tensors.Backend.Cpu.GenericMath

/// Batched matrix kernels on row-major [..., rows, cols] storage.
module internal Linalg =

    /// Keeps the lower (or upper) triangle from diagonal `k` on.
    let triangle<'T when 'T :> INumber<'T>> (x: 'T[]) (shape: int[]) (lower: bool) (k: int) : 'T[] =
        let rows, cols = shape[shape.Length - 2], shape[shape.Length - 1]
        let r = Array.copy x
        for m in 0 .. (if rows * cols = 0 then -1 else x.Length / (rows * cols) - 1) do
            for i in 0 .. rows - 1 do
                for j in 0 .. cols - 1 do
                    let keep = if lower then j - i <= k else j - i >= k
                    if not keep then r[m * rows * cols + i * cols + j] <- 'T.Zero
        r

    /// Solves op(A) X = B by substitution for triangular A [n, n] at aOff, B [n, r] at bOff.
    let solveOne<'T when 'T :> IFloatingPointIeee754<'T>>
        (a: 'T[]) (aOff: int) (b: 'T[]) (bOff: int) (x: 'T[]) (xOff: int) (n: int) (r: int)
        (upper: bool) (transpose: bool) (unitDiagonal: bool) =
        let at i j = if transpose then a[aOff + j * n + i] else a[aOff + i * n + j]
        let lowerEffective = (not upper) <> transpose
        for step in 0 .. n - 1 do
            let i = if lowerEffective then step else n - 1 - step
            let d = if unitDiagonal then 'T.One else at i i
            if eq d 'T.Zero then
                invalidArg "a" $"solveTriangular: the triangular matrix is singular (zero on diagonal element {i})"
            for c in 0 .. r - 1 do
                let mutable s = b[bOff + i * r + c]
                if lowerEffective then
                    for j in 0 .. i - 1 do s <- s - at i j * x[xOff + j * r + c]
                else
                    for j in i + 1 .. n - 1 do s <- s - at i j * x[xOff + j * r + c]
                x[xOff + i * r + c] <- s / d

    /// LU with partial pivoting of one n x n matrix in place at `off`; fills perm, returns the sign.
    let luOne<'T when 'T :> IFloatingPointIeee754<'T>> (lu: 'T[]) (off: int) (n: int) (perm: int[]) (permOff: int) : 'T =
        for i in 0 .. n - 1 do perm[permOff + i] <- i
        let mutable sign = 'T.One
        for col in 0 .. n - 1 do
            let mutable pivot = col
            for i in col + 1 .. n - 1 do
                if gt ('T.Abs lu[off + i * n + col]) ('T.Abs lu[off + pivot * n + col]) then pivot <- i
            if pivot <> col then
                sign <- -sign
                for j in 0 .. n - 1 do
                    let t = lu[off + col * n + j]
                    lu[off + col * n + j] <- lu[off + pivot * n + j]
                    lu[off + pivot * n + j] <- t
                let t = perm[permOff + col]
                perm[permOff + col] <- perm[permOff + pivot]
                perm[permOff + pivot] <- t
            let p = lu[off + col * n + col]
            if ne p 'T.Zero then
                for i in col + 1 .. n - 1 do
                    let f = lu[off + i * n + col] / p
                    lu[off + i * n + col] <- f
                    for j in col + 1 .. n - 1 do
                        lu[off + i * n + j] <- lu[off + i * n + j] - f * lu[off + col * n + j]
        sign
