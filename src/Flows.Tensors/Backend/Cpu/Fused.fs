namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu.GenericMath

/// The fused kernels of a dense layer: bias + activation on a fresh GEMM output and the
/// activation's backward from its output, each in one or two passes.
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
