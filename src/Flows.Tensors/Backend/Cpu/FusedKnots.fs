namespace Flows.Tensors.Backend.Cpu

open System
open System.Buffers
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors.Backend.Cpu.GenericMath

/// A spline's knots from unnormalised bin sizes, one pass per row of K sizes, and the knot
/// derivatives from raw inner values, each with its backward: the fused forms of
/// Flows.Transformers.Spline.knotsComposite (softmax, affine map to at least `minSize`, running sum
/// scaled to [−B, B], ends exactly ±B) and RationalQuadratic.derivativesComposite (softplus, least
/// value, ends 1). The forwards repeat the composites' CPU arithmetic operation for operation (the
/// row maximum subtracted, one vectorised exp over the whole tensor, the row sum and softplus by
/// System.Numerics.Tensors), so their values are the same bits whenever those vectorised
/// functions are (their code can differ by an ulp between JIT tiers).
module internal FusedKnots =

    // exp(a − max a) of every row of `raw` [rows, bins] into `shifted`, by the same vectorised exp
    // over the same length as the composite's, so every element takes the same code path
    let inline private exponentials<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (bins: int) (shifted: 'T[]) =
        let n = raw.Length
        for r in 0 .. n / bins - 1 do
            let row = ReadOnlySpan<'T>(raw, r * bins, bins)
            TensorPrimitives.Subtract(row, TensorPrimitives.Max row, Span<'T>(shifted, r * bins, bins))
        TensorPrimitives.Exp(ReadOnlySpan<'T>(shifted, 0, n), Span<'T>(shifted, 0, n))

    /// Knots [rows, K+1] from unnormalised sizes `raw` [rows, K] on [−bound, bound]:
    /// −B, then −B + 2B·Σ_{j≤i} (minSize + (1 − K·minSize)·softmax_j) for i < K − 1, then B.
    let inline forward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (bins: int) (bound: float) (minSize: float) =
        let rows = raw.Length / bins
        let knots = BufferPool.Rent<'T>(rows * (bins + 1))
        let shifted = ArrayPool<'T>.Shared.Rent raw.Length
        try
            exponentials raw bins shifted
            let scale: 'T = 'T.CreateTruncating(1.0 - minSize * float bins)
            let least: 'T = 'T.CreateTruncating minSize
            let width: 'T = 'T.CreateTruncating(2.0 * bound)
            let left: 'T = 'T.CreateTruncating(-bound)
            let right: 'T = 'T.CreateTruncating bound
            for r in 0 .. rows - 1 do
                let at, out = r * bins, r * (bins + 1)
                let total = TensorPrimitives.Sum(ReadOnlySpan<'T>(shifted, at, bins))
                let mutable running = 'T.Zero
                knots[out] <- left
                for j in 0 .. bins - 2 do
                    running <- running + (shifted[at + j] / total * scale + least)
                    knots[out + 1 + j] <- running * width + left
                knots[out + bins] <- right
        finally
            ArrayPool<'T>.Shared.Return shifted
        knots

    /// The adjoint of `raw` [rows, K] from the adjoint of the knots [rows, K+1]: the running sum's
    /// adjoint is a running sum from the right (the ends are constants), then the softmax's
    /// p ⊙ (g − ⟨p, g⟩).
    let inline backward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (bins: int) (bound: float) (minSize: float) (knotAdjoint: 'T[]) =
        let rows = raw.Length / bins
        let grad = BufferPool.Rent<'T> raw.Length
        let shifted = ArrayPool<'T>.Shared.Rent raw.Length
        try
            exponentials raw bins shifted
            let scale: 'T = 'T.CreateTruncating(1.0 - minSize * float bins)
            let width: 'T = 'T.CreateTruncating(2.0 * bound)
            for r in 0 .. rows - 1 do
                let at, out = r * bins, r * (bins + 1)
                let total = TensorPrimitives.Sum(ReadOnlySpan<'T>(shifted, at, bins))
                // the last size moves only the right end, which is fixed
                let mutable running = 'T.Zero
                let mutable dot = 'T.Zero
                for j in bins - 1 .. -1 .. 0 do
                    if j < bins - 1 then running <- running + knotAdjoint[out + 1 + j] * width
                    let g = running * scale
                    grad[at + j] <- g
                    dot <- dot + shifted[at + j] / total * g
                for j in 0 .. bins - 1 do
                    grad[at + j] <- shifted[at + j] / total * (grad[at + j] - dot)
        finally
            ArrayPool<'T>.Shared.Return shifted
        grad

    // softplus(raw + shift) of every element into `y` as Elementwise's softplus computes it:
    // max(x, 0) + log1p(exp(−|x|)), whole-array passes over the same length as the composite's
    let inline private softplus<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (shift: float) (x: 'T[]) (y: 'T[]) =
        let n = raw.Length
        let xs = Span<'T>(x, 0, n)
        let ys = Span<'T>(y, 0, n)
        TensorPrimitives.Add(ReadOnlySpan<'T> raw, 'T.CreateTruncating shift, xs)
        TensorPrimitives.Abs(ro xs, ys)
        TensorPrimitives.Negate(ro ys, ys)
        TensorPrimitives.Exp(ro ys, ys)
        TensorPrimitives.LogP1(ro ys, ys)
        for i in 0 .. n - 1 do
            if gt x[i] 'T.Zero then y[i] <- y[i] + x[i]

    /// Knot derivatives [rows, m+2] from raw inner values `raw` [rows, m]: 1, softplus(raw + shift) +
    /// least, 1 along each row.
    let inline derivatives<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (rows: int) (shift: float) (least: float) =
        let m = if rows = 0 then 0 else raw.Length / rows
        let out = BufferPool.Rent<'T>(rows * (m + 2))
        let x, y = ArrayPool<'T>.Shared.Rent raw.Length, ArrayPool<'T>.Shared.Rent raw.Length
        try
            softplus raw shift x y
            let least: 'T = 'T.CreateTruncating least
            for r in 0 .. rows - 1 do
                let at = r * (m + 2)
                out[at] <- 'T.One
                for j in 0 .. m - 1 do out[at + 1 + j] <- y[r * m + j] + least
                out[at + m + 1] <- 'T.One
        finally
            ArrayPool<'T>.Shared.Return x
            ArrayPool<'T>.Shared.Return y
        out

    /// The adjoint of `raw` [rows, m] from the adjoint of the knot derivatives [rows, m+2]: the inner
    /// adjoints times σ(raw + shift), written with softplus's output y as −expm1(−y) (as the
    /// composite's softplus backward writes it); the ends are constants.
    let inline derivativesBackward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (raw: 'T[]) (rows: int) (shift: float) (adjoint: 'T[]) =
        let n = raw.Length
        let m = if rows = 0 then 0 else n / rows
        let grad = BufferPool.Rent<'T> n
        let x, y = ArrayPool<'T>.Shared.Rent n, ArrayPool<'T>.Shared.Rent n
        try
            softplus raw shift x y
            for r in 0 .. rows - 1 do
                Array.Copy(adjoint, r * (m + 2) + 1, x, r * m, m)
            let ys = Span<'T>(y, 0, n)
            let gs = Span<'T>(grad, 0, n)
            TensorPrimitives.Negate(ro ys, gs)
            TensorPrimitives.ExpM1(ro gs, gs)
            TensorPrimitives.Multiply(ro gs, ReadOnlySpan<'T>(x, 0, n), gs)
            TensorPrimitives.Negate(ro gs, gs)
        finally
            ArrayPool<'T>.Shared.Return x
            ArrayPool<'T>.Shared.Return y
        grad
