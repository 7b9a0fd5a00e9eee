namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics
open System.Numerics.Tensors
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu.GenericMath

/// Element-wise float kernels over whole arrays or rows, through System.Numerics.Tensors where it
/// has the map, plain loops elsewhere. Generic over float32 and float64.
module internal Elementwise =

    let inline private k<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (v: float) = 'T.CreateTruncating v

    let private loop<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (f: 'T -> 'T) (x: 'T[]) (r: 'T[]) =
        for i in 0 .. x.Length - 1 do r[i] <- f x[i]

    let private mask<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (cond: bool) = if cond then 'T.One else 'T.Zero

    /// Applies `op` to every element.
    let unary<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: UnaryOp) (x: 'T[]) : 'T[] =
        let r = BufferPool.Rent<'T> x.Length
        let xs = ReadOnlySpan<'T> x
        let rs = Span<'T> r
        match op with
        | UnaryOp.Neg -> TensorPrimitives.Negate(xs, rs)
        | UnaryOp.Exp -> TensorPrimitives.Exp(xs, rs)
        | UnaryOp.Log -> TensorPrimitives.Log(xs, rs)
        | UnaryOp.Log1p -> TensorPrimitives.LogP1(xs, rs)
        | UnaryOp.Expm1 -> TensorPrimitives.ExpM1(xs, rs)
        | UnaryOp.Sqrt -> TensorPrimitives.Sqrt(xs, rs)
        | UnaryOp.Abs -> TensorPrimitives.Abs(xs, rs)
        | UnaryOp.Sign -> loop (fun v -> if 'T.IsNaN v then v else k (float ('T.Sign v))) x r
        | UnaryOp.Tanh when typeof<'T> = typeof<float32> -> FastMath.tanh (box x :?> float32[]) 0 (box r :?> float32[]) 0 x.Length
        | UnaryOp.Tanh -> TensorPrimitives.Tanh(xs, rs)
        | UnaryOp.Sigmoid -> TensorPrimitives.Sigmoid(xs, rs)
        | UnaryOp.Softplus ->
            // max(x, 0) + log1p(exp(-|x|)): never overflows, exact for large |x|
            TensorPrimitives.Abs(xs, rs)
            TensorPrimitives.Negate(ro rs, rs)
            TensorPrimitives.Exp(ro rs, rs)
            TensorPrimitives.LogP1(ro rs, rs)
            for i in 0 .. x.Length - 1 do
                if gt x[i] 'T.Zero then r[i] <- r[i] + x[i]
        | UnaryOp.Relu -> TensorPrimitives.Max(xs, 'T.Zero, rs)
        | UnaryOp.Sin -> TensorPrimitives.Sin(xs, rs)
        | UnaryOp.Cos -> TensorPrimitives.Cos(xs, rs)
        | UnaryOp.Atan -> TensorPrimitives.Atan(xs, rs)
        | UnaryOp.Square -> TensorPrimitives.Multiply(xs, xs, rs)
        | UnaryOp.Reciprocal -> TensorPrimitives.Divide('T.One, xs, rs)
        | UnaryOp.Floor -> TensorPrimitives.Floor(xs, rs)
        | UnaryOp.Ceil -> TensorPrimitives.Ceiling(xs, rs)
        | UnaryOp.Round -> TensorPrimitives.Round(xs, rs)
        | UnaryOp.Step -> Vectorised.map (fun v -> Vectorised.ones (Vector.GreaterThan<'T>(v, Vector<'T>.Zero))) (fun v -> mask (gt v 'T.Zero)) x 0 r 0 x.Length
        | UnaryOp.IsNan -> Vectorised.map (fun v -> Vectorised.ones (Vector.OnesComplement<'T>(Vector.Equals<'T>(v, v)))) (fun v -> mask ('T.IsNaN v)) x 0 r 0 x.Length
        | UnaryOp.IsInf ->
            let inf = Vector<'T>('T.PositiveInfinity)
            Vectorised.map (fun v -> Vectorised.ones (Vector.Equals<'T>(Vector.Abs v, inf))) (fun v -> mask ('T.IsInfinity v)) x 0 r 0 x.Length
        | UnaryOp.AddScalar s -> TensorPrimitives.Add(xs, k s, rs)
        | UnaryOp.MulScalar s -> TensorPrimitives.Multiply(xs, k s, rs)
        | UnaryOp.RsubScalar s -> TensorPrimitives.Subtract(k s, xs, rs)
        | UnaryOp.PowScalar p when p = 2.0 -> TensorPrimitives.Multiply(xs, xs, rs)
        | UnaryOp.PowScalar p when p = 1.0 -> xs.CopyTo rs
        | UnaryOp.PowScalar p when p = 0.5 -> TensorPrimitives.Sqrt(xs, rs)
        | UnaryOp.PowScalar p when p = -1.0 -> TensorPrimitives.Divide('T.One, xs, rs)
        | UnaryOp.PowScalar p -> TensorPrimitives.Pow(xs, k p, rs)
        | UnaryOp.LeakyRelu a ->
            let a = k a
            let va = Vector<'T> a
            Vectorised.map (fun v -> Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(v, Vector<'T>.Zero), v, v * va)) (fun v -> if gt v 'T.Zero then v else a * v) x 0 r 0 x.Length
        | UnaryOp.Elu a ->
            // exp of the negative part first (vectorised), then the select
            let a = k a
            TensorPrimitives.Min(xs, 'T.Zero, rs)
            TensorPrimitives.ExpM1(ro rs, rs)
            TensorPrimitives.Multiply(ro rs, a, rs)
            Vectorised.map2 (fun v e -> Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(v, Vector<'T>.Zero), v, e)) (fun v e -> if gt v 'T.Zero then v else e) x 0 r 0 r 0 x.Length
        | UnaryOp.Clamp(lo, hi) ->
            let lo, hi = k lo, k hi
            let vlo, vhi = Vector<'T> lo, Vector<'T> hi
            Vectorised.map (fun v -> Vector.ConditionalSelect<'T>(Vector.LessThan<'T>(v, vlo), vlo, Vector.ConditionalSelect<'T>(Vector.GreaterThan<'T>(v, vhi), vhi, v)))
                (fun v -> if lt v lo then lo elif gt v hi then hi else v) x 0 r 0 x.Length
        | UnaryOp.InRange(lo, hi) ->
            let lo, hi = k lo, k hi
            let vlo, vhi = Vector<'T> lo, Vector<'T> hi
            Vectorised.map (fun v -> Vectorised.ones (Vector.BitwiseAnd<'T>(Vector.GreaterThanOrEqual<'T>(v, vlo), Vector.LessThanOrEqual<'T>(v, vhi))))
                (fun v -> mask (ge v lo && le v hi)) x 0 r 0 x.Length
        r

    let private scalarOp<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) : 'T -> 'T -> 'T =
        match op with
        | BinaryOp.Add -> fun a b -> a + b
        | BinaryOp.Sub -> fun a b -> a - b
        | BinaryOp.Mul -> fun a b -> a * b
        | BinaryOp.Div -> fun a b -> a / b
        | BinaryOp.Pow -> fun a b -> 'T.Pow(a, b)
        | BinaryOp.Max -> fun a b -> 'T.Max(a, b)
        | BinaryOp.Min -> fun a b -> 'T.Min(a, b)
        | BinaryOp.Atan2 -> fun a b -> 'T.Atan2(a, b)
        | BinaryOp.Lt -> fun a b -> mask (lt a b)
        | BinaryOp.Gt -> fun a b -> mask (gt a b)
        | BinaryOp.Le -> fun a b -> mask (le a b)
        | BinaryOp.Ge -> fun a b -> mask (ge a b)
        | BinaryOp.Eq -> fun a b -> mask (eq a b)
        | BinaryOp.Ne -> fun a b -> mask (ne a b)

    /// r = op(a, b) on equal-length spans, vectorised for the arithmetic cases.
    let private spanSpan<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) (a: ReadOnlySpan<'T>) (b: ReadOnlySpan<'T>) (r: Span<'T>) =
        match op with
        | BinaryOp.Add -> TensorPrimitives.Add(a, b, r)
        | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, r)
        | BinaryOp.Mul -> TensorPrimitives.Multiply(a, b, r)
        | BinaryOp.Div -> TensorPrimitives.Divide(a, b, r)
        | BinaryOp.Max -> TensorPrimitives.Max(a, b, r)
        | BinaryOp.Min -> TensorPrimitives.Min(a, b, r)
        | _ ->
            let f = scalarOp op
            for i in 0 .. r.Length - 1 do r[i] <- f a[i] b[i]

    /// Comparisons as 0/1 on equal-length stretches of arrays, vectorised.
    let private compare<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) (a: 'T[]) (aOff: int) (b: 'T[]) (bOff: int) (r: 'T[]) (rOff: int) (n: int) =
        match op with
        | BinaryOp.Lt -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.LessThan<'T>(x, y))) (fun x y -> mask (lt x y)) a aOff b bOff r rOff n
        | BinaryOp.Gt -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.GreaterThan<'T>(x, y))) (fun x y -> mask (gt x y)) a aOff b bOff r rOff n
        | BinaryOp.Le -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.LessThanOrEqual<'T>(x, y))) (fun x y -> mask (le x y)) a aOff b bOff r rOff n
        | BinaryOp.Ge -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.GreaterThanOrEqual<'T>(x, y))) (fun x y -> mask (ge x y)) a aOff b bOff r rOff n
        | BinaryOp.Eq -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.Equals<'T>(x, y))) (fun x y -> mask (eq x y)) a aOff b bOff r rOff n
        | BinaryOp.Ne -> Vectorised.map2 (fun x y -> Vectorised.ones (Vector.OnesComplement<'T>(Vector.Equals<'T>(x, y)))) (fun x y -> mask (ne x y)) a aOff b bOff r rOff n
        | _ -> invalidOp $"{op} is not a comparison"

    let private isComparison (op: BinaryOp) =
        match op with
        | BinaryOp.Lt | BinaryOp.Gt | BinaryOp.Le | BinaryOp.Ge | BinaryOp.Eq | BinaryOp.Ne -> true
        | _ -> false

    /// r = op(a, b) with b one value repeated.
    let private spanScalar<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) (a: ReadOnlySpan<'T>) (b: 'T) (r: Span<'T>) =
        match op with
        | BinaryOp.Add -> TensorPrimitives.Add(a, b, r)
        | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, r)
        | BinaryOp.Mul -> TensorPrimitives.Multiply(a, b, r)
        | BinaryOp.Div -> TensorPrimitives.Divide(a, b, r)
        | _ ->
            let f = scalarOp op
            for i in 0 .. r.Length - 1 do r[i] <- f a[i] b

    /// r = op(a, b) with a one value repeated.
    let private scalarSpan<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) (a: 'T) (b: ReadOnlySpan<'T>) (r: Span<'T>) =
        match op with
        | BinaryOp.Add -> TensorPrimitives.Add(b, a, r)
        | BinaryOp.Sub -> TensorPrimitives.Subtract(a, b, r)
        | BinaryOp.Mul -> TensorPrimitives.Multiply(b, a, r)
        | BinaryOp.Div -> TensorPrimitives.Divide(a, b, r)
        | _ ->
            let f = scalarOp op
            for i in 0 .. r.Length - 1 do r[i] <- f a b[i]

    /// op(a, b) with NumPy broadcasting to `shape`.
    let binary<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (op: BinaryOp) (a: 'T[]) (aShape: int[]) (b: 'T[]) (bShape: int[]) (shape: int[]) : 'T[] =
        let r = BufferPool.Rent<'T> (Shape.numel shape)
        if aShape = bShape && isComparison op then compare op a 0 b 0 r 0 r.Length
        elif aShape = bShape then spanSpan op (ReadOnlySpan a) (ReadOnlySpan b) (Span r)
        elif b.Length = 1 then spanScalar op (ReadOnlySpan a) b[0] (Span r)
        elif a.Length = 1 then scalarSpan op a[0] (ReadOnlySpan b) (Span r)
        else
            let strides = [| Shape.broadcastStrides aShape shape; Shape.broadcastStrides bShape shape; Shape.strides shape |]
            let shape', strides' = Strided.collapse shape strides
            let last = shape'.Length - 1
            let n = shape'[last]
            let sa, sb = strides'[0][last], strides'[1][last]
            let f = scalarOp op
            Strided.rows shape' strides' [| 0; 0; 0 |] (fun o ->
                let rs = Span<'T>(r, o[2], n)
                match sa, sb with
                | 1, 1 when isComparison op -> compare op a o[0] b o[1] r o[2] n
                | 1, 1 -> spanSpan op (ReadOnlySpan(a, o[0], n)) (ReadOnlySpan(b, o[1], n)) rs
                | 1, 0 -> spanScalar op (ReadOnlySpan(a, o[0], n)) b[o[1]] rs
                | 0, 1 -> scalarSpan op a[o[0]] (ReadOnlySpan(b, o[1], n)) rs
                | _ ->
                    for i in 0 .. n - 1 do rs[i] <- f a[o[0] + i * sa] b[o[1] + i * sb])
        r

    /// where(cond, a, b) with broadcasting of all three to `shape`; any non-zero cond picks a.
    let where<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (cond: 'T[]) (cShape: int[]) (a: 'T[]) (aShape: int[]) (b: 'T[]) (bShape: int[]) (shape: int[]) : 'T[] =
        let r = BufferPool.Rent<'T> (Shape.numel shape)
        if cShape = shape && aShape = shape && bShape = shape then
            Vectorised.map3 (fun c x y -> Vector.ConditionalSelect<'T>(Vector.Equals<'T>(c, Vector<'T>.Zero), y, x)) (fun c x y -> if ne c 'T.Zero then x else y) cond a b r r.Length
        else
            let strides =
                [| Shape.broadcastStrides cShape shape; Shape.broadcastStrides aShape shape
                   Shape.broadcastStrides bShape shape; Shape.strides shape |]
            let shape', strides' = Strided.collapse shape strides
            let last = shape'.Length - 1
            if last < 0 then r[0] <- (if ne cond[0] 'T.Zero then a[0] else b[0])
            else
                let n = shape'[last]
                let sc, sa, sb = strides'[0][last], strides'[1][last], strides'[2][last]
                Strided.rows shape' strides' [| 0; 0; 0; 0 |] (fun o ->
                    for i in 0 .. n - 1 do
                        r[o[3] + i] <- if ne cond[o[0] + i * sc] 'T.Zero then a[o[1] + i * sa] else b[o[2] + i * sb])
        r
