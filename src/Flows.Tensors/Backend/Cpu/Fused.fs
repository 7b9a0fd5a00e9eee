namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu.GenericMath

/// Fused kernels where flows spend their time: bias + activation on a fresh GEMM output, the
/// activation's backward from its output, and the Adam update, each in one or two passes.
module internal Fused =


    /// r ← act(r + bias) row by row, for r [n, m] and bias [m] (or empty: no bias); returns the array
    /// holding the result. Tanh, ReLU and the identity run in one pass per row.
    let biasActivation<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (r: 'T[]) (bias: 'T[]) (m: int) (activation: Activation) : 'T[] =
        let rows = if m = 0 then 0 else r.Length / m
        let addBias () =
            if bias.Length > 0 then
                if m < Vector<'T>.Count then
                    // rows narrower than a vector (a 2-D output layer): one flat loop, no call per row
                    let mutable j = 0
                    for i in 0 .. r.Length - 1 do
                        r[i] <- r[i] + bias[j]
                        j <- if j + 1 = m then 0 else j + 1
                else
                    for row in 0 .. rows - 1 do
                        Vectorised.map2 (fun (v: Vector<'T>) (b: Vector<'T>) -> v + b) (fun (v: 'T) (b: 'T) -> v + b) r (row * m) bias 0 r (row * m) m
        match activation with
        | Activation.Identity -> addBias (); r
        | Activation.Relu when bias.Length > 0 ->
            for row in 0 .. rows - 1 do
                Vectorised.map2 (fun (v: Vector<'T>) (b: Vector<'T>) -> Vector.Max<'T>(v + b, Vector<'T>.Zero)) (fun (v: 'T) (b: 'T) -> 'T.Max(v + b, 'T.Zero)) r (row * m) bias 0 r (row * m) m
            r
        | Activation.Tanh when typeof<'T> = typeof<float32> ->
            let r32, b32 = box r :?> float32[], box bias :?> float32[]
            if b32.Length > 0 then FastMath.tanhBiasRows r32 b32 m
            else FastMath.tanh r32 0 r32 0 r32.Length
            r
        | _ ->
            addBias ()
            let whole = Span<'T> r
            match activation with
            | Activation.Identity -> r
            | Activation.Tanh -> TensorPrimitives.Tanh(ro whole, whole); r
            | Activation.Sigmoid -> TensorPrimitives.Sigmoid(ro whole, whole); r
            | Activation.Relu -> TensorPrimitives.Max(ro whole, 'T.Zero, whole); r
            | Activation.LeakyRelu a -> Elementwise.unary (UnaryOp.LeakyRelu a) r
            | Activation.Softplus -> Elementwise.unary UnaryOp.Softplus r
            | Activation.Elu a -> Elementwise.unary (UnaryOp.Elu a) r

    /// adjoint · act'(pre), written with the activation's output y.
    let inline activationGrad<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (activation: Activation) (y: 'T[]) (adjoint: 'T[]) : 'T[] =
        let n = y.Length
        let r = BufferPool.Rent<'T> n
        let zero = Vector<'T>.Zero
        let one = Vector<'T>.One
        match activation with
        | Activation.Identity -> Array.blit adjoint 0 r 0 n
        | Activation.Tanh when typeof<'T> = typeof<float32> ->
            FastMath.tanhGrad (box y :?> float32[]) (box adjoint :?> float32[]) (box r :?> float32[])
        | Activation.Tanh -> Vectorised.map2 (fun (y: Vector<'T>) (g: Vector<'T>) -> g * (one - y * y)) (fun (y: 'T) (g: 'T) -> g * ('T.One - y * y)) y 0 adjoint 0 r 0 n
        | Activation.Sigmoid -> Vectorised.map2 (fun (y: Vector<'T>) (g: Vector<'T>) -> g * y * (one - y)) (fun (y: 'T) (g: 'T) -> g * y * ('T.One - y)) y 0 adjoint 0 r 0 n
        | Activation.Relu ->
            Vectorised.map2 (fun (y: Vector<'T>) (g: Vector<'T>) -> Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(y, zero), g, zero)) (fun (y: 'T) (g: 'T) -> if gt y 'T.Zero then g else 'T.Zero) y 0 adjoint 0 r 0 n
        | Activation.LeakyRelu a ->
            let a: 'T = 'T.CreateTruncating(a)
            let va = Vector<'T> a
            Vectorised.map2 (fun (y: Vector<'T>) (g: Vector<'T>) -> Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(y, zero), g, g * va)) (fun (y: 'T) (g: 'T) -> if gt y 'T.Zero then g else g * a) y 0 adjoint 0 r 0 n
        | Activation.Softplus ->
            // σ(pre) = 1 − exp(−y) = −expm1(−y)
            TensorPrimitives.Negate(ReadOnlySpan y, Span r)
            TensorPrimitives.ExpM1(ro (Span r), Span r)
            TensorPrimitives.Multiply(ro (Span r), ReadOnlySpan adjoint, Span r)
            TensorPrimitives.Negate(ro (Span r), Span r)
        | Activation.Elu a ->
            let a: 'T = 'T.CreateTruncating(a)
            let va = Vector<'T> a
            Vectorised.map2 (fun (y: Vector<'T>) (g: Vector<'T>) -> Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(y, zero), g, g * (y + va))) (fun (y: 'T) (g: 'T) -> if gt y 'T.Zero then g else g * (y + a)) y 0 adjoint 0 r 0 n
        r

    /// x·exp(s) + t, or (x − t)·exp(−s), for equal-length arrays, in two passes.
    let inline affineMap<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (x: 'T[]) (t: 'T[]) (s: 'T[]) (inverse: bool) : 'T[] =
        let r = BufferPool.Rent<'T> x.Length
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
        let w' = BufferPool.Rent<'T> n
        let m' = BufferPool.Rent<'T> n
        let v' = BufferPool.Rent<'T> n
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
        // subnormal operands made every later product of those weights tens of times slower
        // (measured: 1 ms → 9 ms per training step). The cut sits above the subnormals so that no
        // update computes one either; no parameter or moment of this size affects a flow.
        let tiny: 'T = 'T.CreateTruncating(if Runtime.CompilerServices.Unsafe.SizeOf<'T>() = 4 then 1e-30 else 1e-290)
        let flush (x: 'T) = if lt ('T.Abs x) tiny then 'T.Zero else x
        for i in 0 .. n - 1 do
            let grad: 'T = g[i] + coupledDecay * w[i]
            let mi = flush (b1 * m[i] + c1 * grad)
            let vi = flush (b2 * v[i] + c2 * grad * grad)
            m'[i] <- mi
            v'[i] <- vi
            w'[i] <- flush (shrink * w[i] - stepSize * mi / ('T.Sqrt(vi / correction2) + eps))
        w', m', v'
