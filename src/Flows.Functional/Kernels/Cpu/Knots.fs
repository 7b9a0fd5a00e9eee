namespace Flows.Kernels.Cpu

open System
open System.Buffers
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors.Backend.Cpu

/// A spline's knots from unnormalised bin sizes, one pass per row of K sizes, and the backward: the
/// fused form of Flows.Transformers.Spline.knotsComposite (softmax, affine map to at least `minSize`,
/// running sum scaled to [−B, B], ends exactly ±B). The forward repeats the composite's CPU
/// arithmetic operation for operation (the row maximum subtracted, one vectorised exp over the
/// whole tensor, the row sum by System.Numerics.Tensors), so its values are the same bits whenever
/// that exp is (its vectorised code can differ by an ulp between JIT tiers).
module internal Knots =

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
        let knots = CpuKernels.rent<'T>(rows * (bins + 1))
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
        let grad = CpuKernels.rent<'T> raw.Length
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
