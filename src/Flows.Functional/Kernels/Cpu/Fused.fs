namespace Flows.Kernels.Cpu

open System
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors
open Flows.Tensors.Backend.Cpu
open Flows.Tensors.Backend.Cpu.GenericMath

/// The affine transformer and the Adam update on CPU arrays, each in one or two passes.
module internal Fused =

    /// x·exp(s) + t, or (x − t)·exp(−s), for equal-length arrays, in two passes.
    let inline affineMap<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (x: 'T[]) (t: 'T[]) (s: 'T[]) (inverse: bool) : 'T[] =
        let r = CpuKernels.rent<'T> x.Length
        let rs = Span<'T> r
        if inverse then
            TensorPrimitives.Negate(ReadOnlySpan s, rs)
            TensorPrimitives.Exp(ro rs, rs)
            Vectorised.map3 (fun (e: Vector<'T>) (a: Vector<'T>) (b: Vector<'T>) -> (a - b) * e) (fun (e: 'T) (a: 'T) (b: 'T) -> (a - b) * e) r x t r r.Length
        else
            TensorPrimitives.Exp(ReadOnlySpan s, rs)
            Vectorised.map3 (fun (e: Vector<'T>) (a: Vector<'T>) (b: Vector<'T>) -> a * e + b) (fun (e: 'T) (a: 'T) (b: 'T) -> a * e + b) r x t r r.Length
        r

    /// One Adam/AdamW step: new weights, first and second moments.
    let inline adam<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (w: 'T[]) (g: 'T[]) (m: 'T[]) (v: 'T[]) (c: AdamConfig) =
        let n = w.Length
        let w' = CpuKernels.rent<'T> n
        let m' = CpuKernels.rent<'T> n
        let v' = CpuKernels.rent<'T> n
        let b1: 'T = 'T.CreateTruncating(c.Beta1)
        let b2: 'T = 'T.CreateTruncating(c.Beta2)
        let c1: 'T = 'T.CreateTruncating(1.0 - c.Beta1)
        let c2: 'T = 'T.CreateTruncating(1.0 - c.Beta2)
        let stepSize: 'T = 'T.CreateTruncating(c.LearningRate / (1.0 - c.Beta1 ** float c.Step))
        let correction2: 'T = 'T.CreateTruncating(1.0 - c.Beta2 ** float c.Step)
        let eps: 'T = 'T.CreateTruncating(c.Eps)
        let coupledDecay: 'T = if c.Decoupled then 'T.Zero else 'T.CreateTruncating(c.WeightDecay)
        let shrink: 'T = if c.Decoupled then 'T.CreateTruncating(1.0 - c.LearningRate * c.WeightDecay) else 'T.One
        // Values this small are flushed to zero: the moments of a unit whose gradient stays zero
        // decay geometrically (and weight decay shrinks its weights) into the subnormal range, and
        // subnormal operands made every later product of those weights tens of times slower. The cut sits above the subnormals so that no
        // update computes one either; no parameter or moment of this size affects a flow.
        let tiny: 'T = 'T.CreateTruncating(if Runtime.CompilerServices.Unsafe.SizeOf<'T>() = 4 then 1e-30 else 1e-290)
        let flush (x: 'T) = if lt ('T.Abs x) tiny then 'T.Zero else x
        // SIMD over whole vectors, then the same arithmetic per element for the tail: one pass over
        // memory (a small model's step spent a fifth of its time in the scalar loop).
        let width = Vector<'T>.Count
        let vb1, vb2, vc1, vc2 = Vector<'T> b1, Vector<'T> b2, Vector<'T> c1, Vector<'T> c2
        let vStep, vCorrection, vEps = Vector<'T> stepSize, Vector<'T> correction2, Vector<'T> eps
        let vDecay, vShrink, vTiny = Vector<'T> coupledDecay, Vector<'T> shrink, Vector<'T> tiny
        let vFlush (x: Vector<'T>) = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs x, vTiny), Vector<'T>.Zero, x)
        let mutable i = 0
        while i + width <= n do
            let wi = Vector<'T>(w, i)
            let grad = Vector<'T>(g, i) + vDecay * wi
            let mi = vFlush (vb1 * Vector<'T>(m, i) + vc1 * grad)
            let vi = vFlush (vb2 * Vector<'T>(v, i) + vc2 * grad * grad)
            mi.CopyTo(m', i)
            vi.CopyTo(v', i)
            (vFlush (vShrink * wi - vStep * mi / (Vector.SquareRoot(vi / vCorrection) + vEps))).CopyTo(w', i)
            i <- i + width
        for i in i .. n - 1 do
            let grad: 'T = g[i] + coupledDecay * w[i]
            let mi = flush (b1 * m[i] + c1 * grad)
            let vi = flush (b2 * v[i] + c2 * grad * grad)
            m'[i] <- mi
            v'[i] <- vi
            w'[i] <- flush (shrink * w[i] - stepSize * mi / ('T.Sqrt(vi / correction2) + eps))
        w', m', v'
