namespace Flows.Tensors.Backend.Cpu

open System
open System.Numerics
open Flows.Tensors
open Flows.Tensors.Backend

/// Flat row-major storage of one dtype.
type internal CpuData =
    | F32 of float32[]
    | F64 of float[]
    | I32 of int[]

/// A shape-preserving array transform written once for every element type.
type internal IArrayMap =
    abstract Apply<'T> : 'T[] -> 'T[]

/// The CPU backend's tensor: managed arrays, kernels from System.Numerics.Tensors and a GEMM provider.
[<Sealed>]
type internal CpuTensor(data: CpuData, shape: int[]) =
    inherit
        RawTensor(
            shape,
            (match data with
             | F32 _ -> Dtype.Float32
             | F64 _ -> Dtype.Float64
             | I32 _ -> Dtype.Int32),
            Device.Cpu
        )

    static let backend = lazy (CpuBackend() :> IBackend)

    member _.Data = data

    [<ThreadStatic; DefaultValue>]
    static val mutable private ones: float32[]

    // a row of ones for column sums by GEMM, kept per thread and grown as needed
    static member private Ones(n: int) : float32[] =
        if isNull CpuTensor.ones || CpuTensor.ones.Length < n then CpuTensor.ones <- Array.create (max n 1024) 1.0f
        CpuTensor.ones

    /// The CPU backend (one per process).
    static member CpuBackend = backend.Force()

    // `op` is an object (a string or an op union case) so its text is only made on failure.
    static member Of(t: RawTensor, op: obj) : CpuTensor =
        match t with
        | :? CpuTensor as c -> c
        | _ -> invalidArg (string op) $"{op}: expected a tensor on cpu, got one on {t.Device}; move it with moveTo first"

    member private _.Map(op: obj, f32: float32[] -> float32[], f64: float[] -> float[]) =
        match data with
        | F32 a -> F32(f32 a)
        | F64 a -> F64(f64 a)
        | I32 _ -> invalidArg (string op) $"{op}: expected a float32 or float64 tensor, got int32 {Shape.show shape}"

    member private _.MapAny(f: IArrayMap) =
        match data with
        | F32 a -> F32(f.Apply a)
        | F64 a -> F64(f.Apply a)
        | I32 a -> I32(f.Apply a)

    member private t.Other(op: obj, other: RawTensor) =
        let o = CpuTensor.Of(other, op)
        if o.Dtype <> t.Dtype then
            invalidArg (string op) $"{op}: dtypes differ: {t.Dtype} {Shape.show t.Shape} and {o.Dtype} {Shape.show o.Shape}"
        o

    static member Ints(op: string, t: RawTensor) =
        match CpuTensor.Of(t, op).Data with
        | I32 a -> a
        | _ -> invalidArg op $"{op}: indices must be int32, got {t.Dtype} {Shape.show t.Shape}"

    override _.Backend = backend.Force()

    override _.ToArray() =
        match data with
        | F32 a -> Array.copy a :> Array
        | F64 a -> Array.copy a :> Array
        | I32 a -> Array.copy a :> Array

    override _.Reshape(newShape) = CpuTensor(data, newShape)

    override _.Storage =
        match data with
        | F32 a -> box a
        | F64 a -> box a
        | I32 a -> box a

    override _.Cast(dtype) =
        let r =
            match data, dtype with
            | F32 a, Dtype.Float32 -> F32 a
            | F32 a, Dtype.Float64 -> F64(Array.map float a)
            | F32 a, Dtype.Int32 -> I32(Array.map int a)
            | F64 a, Dtype.Float32 -> F32(Array.map float32 a)
            | F64 a, Dtype.Float64 -> F64 a
            | F64 a, Dtype.Int32 -> I32(Array.map int a)
            | I32 a, Dtype.Float32 -> F32(Array.map float32 a)
            | I32 a, Dtype.Float64 -> F64(Array.map float a)
            | I32 a, Dtype.Int32 -> I32 a
        CpuTensor(r, shape)

    override t.Unary(op) =
        CpuTensor(t.Map(box op, Elementwise.unary op, Elementwise.unary op), shape)

    override t.Binary(op, other) =
        let o = t.Other(box op, other)
        let outShape = Shape.broadcast (box op) shape o.Shape
        AllocationBudget.Check(outShape, t.Dtype)
        let r =
            match data, o.Data with
            | F32 a, F32 b -> F32(Elementwise.binary op a shape b o.Shape outShape)
            | F64 a, F64 b -> F64(Elementwise.binary op a shape b o.Shape outShape)
            | _ -> invalidArg (string op) $"{op}: expected float operands, got {t.Dtype}"
        CpuTensor(r, outShape)

    override t.Where(condition, other) =
        let c = t.Other("where", condition)
        let o = t.Other("where", other)
        let outShape = Shape.broadcast "where" (Shape.broadcast "where" c.Shape shape) o.Shape
        let r =
            match c.Data, data, o.Data with
            | F32 cd, F32 a, F32 b -> F32(Elementwise.where cd c.Shape a shape b o.Shape outShape)
            | F64 cd, F64 a, F64 b -> F64(Elementwise.where cd c.Shape a shape b o.Shape outShape)
            | _ -> invalidArg "where" $"where: expected float operands, got {t.Dtype}"
        CpuTensor(r, outShape)

    override t.Reduce(op, dim, keepDim) =
        let outShape = Shape.reduceDim shape dim keepDim
        let r =
            match op, data with
            | (ReduceOp.ArgMax | ReduceOp.ArgMin), F32 a -> I32(Reduce.indices (op = ReduceOp.ArgMax) a shape dim)
            | (ReduceOp.ArgMax | ReduceOp.ArgMin), F64 a -> I32(Reduce.indices (op = ReduceOp.ArgMax) a shape dim)
            // column sums of a tall matrix (bias gradients) as ones[1, n] · x[n, m]: the GEMM
            // library streams the rows faster than a row-by-row loop
            | ReduceOp.Sum, F32 a when dim = 0 && shape.Length = 2 && shape[0] >= 64 ->
                let n, m = shape[0], shape[1]
                let c = Array.zeroCreate<float32> m
                Gemm.active.Sgemm(false, false, 1, m, n, ReadOnlySpan(CpuTensor.Ones n), n, ReadOnlySpan a, m, Span c, m)
                F32 c
            | _ -> t.Map(box op, (fun a -> Reduce.values op a shape dim), (fun a -> Reduce.values op a shape dim))
        CpuTensor(r, outShape)

    override t.SumTo(target) =
        CpuTensor(t.Map("sumTo", (fun a -> Reduce.sumTo a shape target), (fun a -> Reduce.sumTo a shape target)), target)

    override t.Expand(target) =
        AllocationBudget.Check(target, t.Dtype)
        let srcStrides = Shape.broadcastStrides shape target
        let copy =
            { new IArrayMap with
                member _.Apply(a) =
                    let r = BufferPool.Rent(Shape.numel target)
                    Strided.copy a 0 srcStrides r 0 (Shape.strides target) target
                    r }
        CpuTensor(t.MapAny copy, target)

    override t.Permute(dims) =
        let outShape = dims |> Array.map (fun d -> shape[d])
        let s = Shape.strides shape
        let srcStrides = dims |> Array.map (fun d -> s[d])
        let copy =
            { new IArrayMap with
                member _.Apply(a) =
                    let r = BufferPool.Rent a.Length
                    Strided.copy a 0 srcStrides r 0 (Shape.strides outShape) outShape
                    r }
        CpuTensor(t.MapAny copy, outShape)

    override t.Slice(starts, lengths) =
        let s = Shape.strides shape
        let offset = Array.fold2 (fun acc st str -> acc + st * str) 0 starts s
        let copy =
            { new IArrayMap with
                member _.Apply(a) =
                    let r = BufferPool.Rent(Shape.numel lengths)
                    Strided.copy a offset s r 0 (Shape.strides lengths) lengths
                    r }
        CpuTensor(t.MapAny copy, lengths)

    override t.Pad(before, after, value) =
        let outShape = Array.init shape.Length (fun i -> shape[i] + before[i] + after[i])
        let os = Shape.strides outShape
        let offset = Array.fold2 (fun acc b str -> acc + b * str) 0 before os
        // a pooled array, filled and then overwritten inside: fresh zeroed memory cost a spline
        // layer's scoring more than the fill
        let padded (a: 'T[]) (v: 'T) =
            let r = BufferPool.Rent(Shape.numel outShape)
            Array.Fill(r, v)
            Strided.copy a 0 (Shape.strides shape) r offset os shape
            r
        let r =
            match data with
            | F32 a -> F32(padded a (float32 value))
            | F64 a -> F64(padded a value)
            | I32 a -> I32(padded a (int value))
        CpuTensor(r, outShape)

    override t.Flip(dims) =
        let s = Shape.strides shape
        let srcStrides = s |> Array.mapi (fun i st -> if Array.contains i dims then -st else st)
        let offset = dims |> Array.sumBy (fun d -> (shape[d] - 1) * s[d])
        let copy =
            { new IArrayMap with
                member _.Apply(a) =
                    let r = BufferPool.Rent a.Length
                    if a.Length > 0 then Strided.copy a offset srcStrides r 0 s shape
                    r }
        CpuTensor(t.MapAny copy, shape)

    override t.Cumsum(dim, reverse) =
        CpuTensor(t.Map("cumsum", (fun a -> Reduce.cumsum a shape dim reverse), (fun a -> Reduce.cumsum a shape dim reverse)), shape)

    override t.Gather(dim, index) =
        let idx = CpuTensor.Ints("gather", index)
        let g =
            { new IArrayMap with
                member _.Apply(a) = Indexing.gather a shape dim idx index.Shape }
        CpuTensor(t.MapAny g, index.Shape)

    override t.ScatterAdd(dim, index, target) =
        let idx = CpuTensor.Ints("scatterAdd", index)
        let r =
            match data with
            | F32 a -> F32(Indexing.scatterAdd a dim idx index.Shape target)
            | F64 a -> F64(Indexing.scatterAdd a dim idx index.Shape target)
            | I32 a -> I32(Indexing.scatterAdd a dim idx index.Shape target)
        CpuTensor(r, target)

    override t.SearchSorted(values, right) =
        let v = t.Other("searchSorted", values)
        let k = shape[shape.Length - 1]
        let m = if v.Rank = 0 then 1 else v.Shape[v.Rank - 1]
        let r =
            match data, v.Data with
            | F32 s, F32 x -> Indexing.searchSorted s k x m right
            | F64 s, F64 x -> Indexing.searchSorted s k x m right
            | I32 s, I32 x -> Indexing.searchSorted s k x m right
            | _ -> invalidArg "searchSorted" "searchSorted: dtypes differ"
        CpuTensor(I32 r, v.Shape)

    override t.MatMul(other, transA, transB) =
        let o = t.Other("matmul", other)
        let outShape, m, k, n = Shape.matmul shape o.Shape transA transB
        AllocationBudget.Check(outShape, t.Dtype)
        let lda = shape[shape.Length - 1]
        let ldb = o.Shape[o.Rank - 1]
        let r =
            match data, o.Data with
            | F32 a, F32 b ->
                // every product writes all of its block of C (k = 0 clears it)
                let c = BufferPool.Rent<float32>(Shape.numel outShape)
                Shape.batches shape o.Shape outShape (fun ao bo co ->
                    Gemm.active.Sgemm(transA, transB, m, n, k, ReadOnlySpan(a, ao, a.Length - ao), lda,
                                      ReadOnlySpan(b, bo, b.Length - bo), ldb, Span(c, co, m * n), n))
                F32 c
            | F64 a, F64 b ->
                let c = BufferPool.Rent<float>(Shape.numel outShape)
                Shape.batches shape o.Shape outShape (fun ao bo co ->
                    Gemm.active.Dgemm(transA, transB, m, n, k, ReadOnlySpan(a, ao, a.Length - ao), lda,
                                      ReadOnlySpan(b, bo, b.Length - bo), ldb, Span(c, co, m * n), n))
                F64 c
            | _ -> invalidArg "matmul" $"matmul: expected float operands, got {t.Dtype}"
        CpuTensor(r, outShape)

    override t.Triangle(lower, k) =
        let r =
            match data with
            | F32 a -> F32(Linalg.triangle a shape lower k)
            | F64 a -> F64(Linalg.triangle a shape lower k)
            | I32 a -> I32(Linalg.triangle a shape lower k)
        CpuTensor(r, shape)

    override t.SolveTriangular(b, upper, transpose, unitDiagonal) =
        let o = t.Other("solveTriangular", b)
        let n = shape[shape.Length - 1]
        let cols = o.Shape[o.Rank - 1]
        let batch = Shape.broadcast "solveTriangular" shape[.. shape.Length - 3] o.Shape[.. o.Rank - 3]
        let outShape = Array.append batch [| n; cols |]
        let solve (a: 'T[]) (bd: 'T[]) =
            let x = Array.zeroCreate (Shape.numel outShape)
            Shape.batches shape o.Shape outShape (fun ao bo xo ->
                Linalg.solveOne a ao bd bo x xo n cols upper transpose unitDiagonal)
            x
        let r =
            match data, o.Data with
            | F32 a, F32 bd -> F32(solve a bd)
            | F64 a, F64 bd -> F64(solve a bd)
            | _ -> invalidArg "solveTriangular" $"solveTriangular: expected float operands, got {t.Dtype}"
        CpuTensor(r, outShape)

    override t.Lu() =
        let n = shape[shape.Length - 1]
        let batch = shape[.. shape.Length - 3]
        let count = Shape.numel batch
        let perm = Array.zeroCreate (count * n)
        let factor (a: 'T[]) =
            let lu = Array.copy a
            let signs = Array.init count (fun b -> Linalg.luOne lu (b * n * n) n perm (b * n))
            lu, signs
        let lu, signs =
            match data with
            | F32 a -> let lu, s = factor a in F32 lu, F32 s
            | F64 a -> let lu, s = factor a in F64 lu, F64 s
            | I32 _ -> invalidArg "lu" "lu: expected a float tensor, got int32"
        CpuTensor(lu, shape), CpuTensor(I32 perm, Array.append batch [| n |]), CpuTensor(signs, batch)

    override t.Dense(weight, bias, activation) =
        let w = t.Other("dense", weight)
        let b = t.Other("dense", bias)
        let n, inputs = shape[0], shape[1]
        let outputs = w.Shape[0]
        let outShape = [| n; outputs |]
        let r =
            match data, w.Data, b.Data with
            | F32 x, F32 wd, F32 bd ->
                let c = BufferPool.Rent<float32>(n * outputs)
                Gemm.active.Sgemm(false, true, n, outputs, inputs, ReadOnlySpan x, inputs, ReadOnlySpan wd, inputs, Span c, outputs)
                F32(Fused.biasActivation c bd outputs activation)
            | F64 x, F64 wd, F64 bd ->
                let c = BufferPool.Rent<float>(n * outputs)
                Gemm.active.Dgemm(false, true, n, outputs, inputs, ReadOnlySpan x, inputs, ReadOnlySpan wd, inputs, Span c, outputs)
                F64(Fused.biasActivation c bd outputs activation)
            | _ -> invalidArg "dense" $"dense: expected float operands, got {t.Dtype}"
        CpuTensor(r, outShape)

    override t.ActivationGrad(activation, adjoint) =
        let g = t.Other("activationGrad", adjoint)
        let r =
            match data, g.Data with
            | F32 y, F32 a -> F32(Fused.activationGrad activation y a)
            | F64 y, F64 a -> F64(Fused.activationGrad activation y a)
            | _ -> invalidArg "activationGrad" $"activationGrad: expected float operands, got {t.Dtype}"
        CpuTensor(r, shape)

/// Creates CPU tensors.
and [<Sealed>] internal CpuBackend() =
    interface IBackend with
        member _.Device = Device.Cpu

        member _.Full(shape, dtype, value) =
            AllocationBudget.Check(shape, dtype)
            let n = Shape.numel shape
            let data =
                match dtype with
                | Dtype.Float32 -> F32(Array.create n (float32 value))
                | Dtype.Float64 -> F64(Array.create n value)
                | Dtype.Int32 -> I32(Array.create n (int value))
            CpuTensor(data, shape)

        member _.OfArray(array, shape) =
            let data =
                match array with
                | :? (float32[]) as a -> F32(Array.copy a)
                | :? (float[]) as a -> F64(Array.copy a)
                | :? (int[]) as a -> I32(Array.copy a)
                | _ -> invalidArg "data" $"expected float32[], float[] or int[], got {array.GetType().Name}"
            if not (array.Length = Shape.numel shape) then Shape.fail "ofArray" ($"{array.Length} elements cannot have shape {Shape.show shape}")
            CpuTensor(data, shape)

        member _.Arange(n, dtype) =
            AllocationBudget.Check([| n |], dtype)
            let data =
                match dtype with
                | Dtype.Float32 -> F32(Array.init n float32)
                | Dtype.Float64 -> F64(Array.init n float)
                | Dtype.Int32 -> I32(Array.init n id)
            CpuTensor(data, [| n |])

        member _.Random(kind, shape, dtype, seed, offset) =
            AllocationBudget.Check(shape, Dtype.Float64)
            let n = Shape.numel shape
            // one tight loop per distribution: this runs for every batch of noise
            let values = Array.zeroCreate<float> n
            match kind with
            | RandomKind.Uniform(lo, hi) ->
                for i in 0 .. n - 1 do values[i] <- lo + (hi - lo) * Counter.unit seed (offset + 2UL * uint64 i)
            | RandomKind.Normal(mean, std) ->
                for i in 0 .. n - 1 do values[i] <- mean + std * Counter.normal seed offset (uint64 i)
            | RandomKind.Rademacher ->
                for i in 0 .. n - 1 do values[i] <- if Counter.bits seed (offset + 2UL * uint64 i) &&& 1UL = 0UL then 1.0 else -1.0
            | RandomKind.Bernoulli p ->
                for i in 0 .. n - 1 do values[i] <- if Counter.unit seed (offset + 2UL * uint64 i) < p then 1.0 else 0.0
            | RandomKind.Integers(lo, hi) ->
                for i in 0 .. n - 1 do values[i] <- float lo + floor (Counter.unit seed (offset + 2UL * uint64 i) * float (hi - lo))
            let data =
                match dtype with
                | Dtype.Float32 ->
                    let r = Array.map float32 values
                    // Rounding to float32 can carry a uniform draw up to `high`: keep it inside [low, high).
                    match kind with
                    | RandomKind.Uniform(_, hi) ->
                        let top = float32 hi
                        for i in 0 .. r.Length - 1 do
                            if r[i] >= top then r[i] <- MathF.BitDecrement top
                    | _ -> ()
                    F32 r
                | Dtype.Float64 -> F64 values
                | Dtype.Int32 -> I32(Array.map int values)
            CpuTensor(data, shape)

        member _.Cat(tensors, dim) =
            let first = tensors[0]
            let outShape = Array.copy first.Shape
            outShape[dim] <- tensors |> Array.sumBy (fun t -> t.Shape[dim])
            let os = Shape.strides outShape
            let place (pick: CpuTensor -> 'T[]) =
                // every element is written by one of the parts
                let r = BufferPool.Rent(Shape.numel outShape)
                let mutable at = 0
                for t in tensors do
                    let c = CpuTensor.Of(t, "cat")
                    Strided.copy (pick c) 0 (Shape.strides t.Shape) r (at * os[dim]) os t.Shape
                    at <- at + t.Shape[dim]
                r
            let fail () = invalidArg "tensors" "cat: tensors have different dtypes"
            let data =
                match (CpuTensor.Of(first, "cat")).Data with
                | F32 _ -> F32(place (fun c -> match c.Data with F32 a -> a | _ -> fail ()))
                | F64 _ -> F64(place (fun c -> match c.Data with F64 a -> a | _ -> fail ()))
                | I32 _ -> I32(place (fun c -> match c.Data with I32 a -> a | _ -> fail ()))
            CpuTensor(data, outShape) :> RawTensor
