namespace Flows.Tensors.Backend.Cuda

open System
open Flows.Tensors
open Flows.Tensors.Backend

/// The CUDA backend's tensor: a device buffer (shared by reshapes) and a row-major shape. Every op
/// queues kernels on the device's stream and returns at once; only `ToArray` waits.
[<Sealed>]
type internal CudaTensor(buffer: DeviceBuffer, shape: int[], dtype: Dtype, backend: CudaBackend) =
    inherit RawTensor(shape, dtype, backend.Gpu.Device)

    /// The device memory (shared with reshapes).
    member _.Buffer: DeviceBuffer = buffer
    /// The device.
    member _.Gpu: CudaDevice = backend.Gpu
    /// The device address of element 0.
    member _.Pointer: uint64 = buffer.Pointer
    member private _.Suffix = OpCodes.suffix dtype

    /// The tensor as a CUDA tensor on this device, or a clear error naming both devices.
    member t.Same(op: obj, other: RawTensor) : CudaTensor =
        match other with
        | :? CudaTensor as c when c.Device = t.Device -> c
        | _ -> invalidArg (string op) $"{op}: expected a tensor on {t.Device}, got one on {other.Device}; move it with moveTo first"

    // same device and dtype
    member private t.Other(op: obj, other: RawTensor) =
        let o = t.Same(op, other)
        if o.Dtype <> dtype then
            invalidArg (string op) $"{op}: dtypes differ: {dtype} {Shape.show shape} and {o.Dtype} {Shape.show o.Shape}"
        o

    member private t.Float(op: obj) =
        if not dtype.IsFloat then invalidArg (string op) $"{op}: expected a float32 or float64 tensor, got int32 {Shape.show shape}"

    member t.Fresh(shape': int[], dtype': Dtype, op: string) =
        let n = Shape.numel shape'
        CudaTensor(backend.Gpu.Alloc(n, dtype', $"{op} {Shape.show shape'}"), shape', dtype', backend)

    // dst ← src over the box `box`, both strided, in one launch
    member private t.CopyStrided(box: int[], srcOffset: int, srcStrides: int[], dst: CudaTensor, dstOffset: int, dstStrides: int[]) =
        t.Gpu.LaunchN(
            "strided_copy_" + t.Suffix,
            int64 (Shape.numel box),
            [ KernelArg.Long(int64 (Shape.numel box)); KernelArg.Int box.Length; Launch.dims "copy" box
              KernelArg.Ptr t.Pointer; KernelArg.Long(int64 srcOffset); Launch.dims "copy" srcStrides
              KernelArg.Ptr dst.Pointer; KernelArg.Long(int64 dstOffset); Launch.dims "copy" dstStrides ]
        )

    member private t.Strided(op: string, outShape: int[], offset: int, srcStrides: int[]) =
        let r = t.Fresh(outShape, dtype, op)
        t.CopyStrided(outShape, offset, srcStrides, r, 0, Shape.strides outShape)
        r

    member private t.Launch(name: string, n: int, args: KernelArg list) = t.Gpu.LaunchN(name + "_" + t.Suffix, int64 n, args)

    // batch offsets (in elements) of a broadcast batched product, as the CPU backend enumerates them
    static member private BatchOffsets(aShape: int[], bShape: int[], outShape: int[]) =
        let offsets = Collections.Generic.List<struct (int * int * int)>()
        Shape.batches aShape bShape outShape (fun ao bo co -> offsets.Add(struct (ao, bo, co)))
        offsets.ToArray()

    override _.Backend = backend :> IBackend

    override t.ToArray() =
        let n = Shape.numel shape
        let array: Array =
            match dtype with
            | Dtype.Float32 -> Array.zeroCreate<float32> n
            | Dtype.Float64 -> Array.zeroCreate<float> n
            | Dtype.Int32 -> Array.zeroCreate<int> n
        t.Gpu.Download(buffer, array)
        array

    override _.Reshape(newShape) = CudaTensor(buffer, newShape, dtype, backend)

    override _.Storage = box buffer

    override t.Cast(target) =
        if target = dtype then t
        else
            let r = t.Fresh(shape, target, "cast")
            t.Gpu.LaunchN($"cast_{t.Suffix}_{OpCodes.suffix target}", int64 t.Numel, [ KernelArg.Long(int64 t.Numel); KernelArg.Ptr t.Pointer; KernelArg.Ptr r.Pointer ])
            r

    override t.Unary(op) =
        t.Float op
        let code, p, q = OpCodes.unary op
        let r = t.Fresh(shape, dtype, string op)
        t.Launch("unary", t.Numel, [ KernelArg.Int code; KernelArg.Double p; KernelArg.Double q; KernelArg.Long(int64 t.Numel); KernelArg.Ptr t.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.Binary(op, other) =
        let o = t.Other(box op, other)
        t.Float op
        let outShape = Shape.broadcast (box op) shape o.Shape
        let r = t.Fresh(outShape, dtype, string op)
        let contiguous = shape = outShape && o.Shape = outShape
        let n = Shape.numel outShape
        t.Launch(
            "binary",
            n,
            [ KernelArg.Int(OpCodes.binary op); KernelArg.Long(int64 n); KernelArg.Int(if contiguous then 1 else 0)
              KernelArg.Int outShape.Length; Launch.dims "binary" outShape
              Launch.dims "binary" (Launch.broadcastStrides shape outShape); Launch.dims "binary" (Launch.broadcastStrides o.Shape outShape)
              KernelArg.Ptr t.Pointer; KernelArg.Ptr o.Pointer; KernelArg.Ptr r.Pointer ]
        )
        r

    override t.Where(condition, other) =
        let c = t.Other("where", condition)
        let o = t.Other("where", other)
        t.Float "where"
        let outShape = Shape.broadcast "where" (Shape.broadcast "where" c.Shape shape) o.Shape
        let r = t.Fresh(outShape, dtype, "where")
        let n = Shape.numel outShape
        let strides (s: int[]) = Launch.dims "where" (Launch.broadcastStrides s outShape)
        t.Launch(
            "where",
            n,
            [ KernelArg.Long(int64 n); KernelArg.Int outShape.Length; Launch.dims "where" outShape
              strides c.Shape; strides shape; strides o.Shape
              KernelArg.Ptr c.Pointer; KernelArg.Ptr t.Pointer; KernelArg.Ptr o.Pointer; KernelArg.Ptr r.Pointer ]
        )
        r

    override t.Reduce(op, dim, keepDim) =
        t.Float op
        let outShape = Shape.reduceDim shape dim keepDim
        let outer, n, inner = Launch.split shape dim
        let outputs = outer * inner
        let threads = Launch.reduceThreads n
        let geometry = [ KernelArg.Int outer; KernelArg.Int n; KernelArg.Int inner; KernelArg.Ptr t.Pointer ]
        match op with
        | ReduceOp.ArgMax | ReduceOp.ArgMin ->
            if not (n > 0) then Shape.fail "argmax" ($"cannot reduce an empty dimension {dim} of {Shape.show shape}")
            let r = t.Fresh(outShape, Dtype.Int32, string op)
            if outputs > 0 then
                t.Gpu.Launch("arg_reduce_" + t.Suffix, outputs, threads, threads * (dtype.Size + 4),
                             KernelArg.Int(if op = ReduceOp.ArgMax then 1 else 0) :: geometry @ [ KernelArg.Ptr r.Pointer ])
            r
        | _ ->
            let r = t.Fresh(outShape, dtype, string op)
            if outputs > 0 then
                t.Gpu.Launch("reduce_" + t.Suffix, outputs, threads, threads * dtype.Size,
                             KernelArg.Int(OpCodes.reduce op) :: geometry @ [ KernelArg.Ptr r.Pointer ])
            r

    override t.SumTo(target) =
        t.Float "sumTo"
        // the CPU's order: the leading dimensions broadcasting added, then each stretched dimension
        let extra = shape.Length - target.Length
        let mutable current: RawTensor = t
        if extra > 0 then
            let lead = Shape.numel shape[.. extra - 1]
            let rest = shape[extra ..]
            current <- t.Reshape([| lead; Shape.numel rest |]).Reduce(ReduceOp.Sum, 0, false).Reshape rest
        for d in 0 .. target.Length - 1 do
            if target[d] = 1 && current.Shape[d] <> 1 then current <- current.Reduce(ReduceOp.Sum, d, true)
        current.Reshape target

    override t.Expand(target) = t.Strided("expand", target, 0, Launch.broadcastStrides shape target)

    override t.Permute(dims) = t.Strided("permute", dims |> Array.map (fun d -> shape[d]), 0, Launch.permuteStrides shape dims)

    override t.Slice(starts, lengths) =
        let s = Shape.strides shape
        t.Strided("slice", lengths, Array.fold2 (fun acc st str -> acc + st * str) 0 starts s, s)

    override t.Pad(before, after, value) =
        let outShape = Array.init shape.Length (fun i -> shape[i] + before[i] + after[i])
        let r = t.Fresh(outShape, dtype, "pad")
        let total = Shape.numel outShape
        t.Gpu.LaunchN("fill_" + t.Suffix, int64 total, [ KernelArg.Long(int64 total); KernelArg.Double value; KernelArg.Ptr r.Pointer ])
        let os = Shape.strides outShape
        t.CopyStrided(shape, 0, Shape.strides shape, r, Array.fold2 (fun acc b str -> acc + b * str) 0 before os, os)
        r

    override t.Flip(dims) =
        let offset, strides = Launch.flipStrides shape dims
        if t.Numel = 0 then t.Fresh(shape, dtype, "flip") else t.Strided("flip", shape, offset, strides)

    override t.Cumsum(dim, reverse) =
        t.Float "cumsum"
        let outer, n, inner = Launch.split shape dim
        let r = t.Fresh(shape, dtype, "cumsum")
        t.Launch("cumsum", outer * inner,
                 [ KernelArg.Int outer; KernelArg.Int n; KernelArg.Int inner; KernelArg.Int(if reverse then 1 else 0); KernelArg.Ptr t.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.Gather(dim, index) =
        let idx = t.Same("gather", index)
        if idx.Dtype <> Dtype.Int32 then invalidArg "gather" $"gather: indices must be int32, got {idx.Dtype} {Shape.show idx.Shape}"
        let _, n, inner = Launch.split shape dim
        let total = idx.Numel
        let r = t.Fresh(idx.Shape, dtype, "gather")
        t.Launch("gather", total,
                 [ KernelArg.Long(int64 total); KernelArg.Int n; KernelArg.Int idx.Shape[dim]; KernelArg.Int inner; KernelArg.Ptr t.Pointer; KernelArg.Ptr idx.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.ScatterAdd(dim, index, target) =
        let idx = t.Same("scatterAdd", index)
        if idx.Dtype <> Dtype.Int32 then invalidArg "scatterAdd" $"scatterAdd: indices must be int32, got {idx.Dtype} {Shape.show idx.Shape}"
        let _, n, inner = Launch.split target dim
        let r = t.Fresh(target, dtype, "scatterAdd")
        let size = Shape.numel target
        t.Gpu.LaunchN("fill_" + t.Suffix, int64 size, [ KernelArg.Long(int64 size); KernelArg.Double 0.0; KernelArg.Ptr r.Pointer ])
        let total = idx.Numel
        t.Launch("scatter_add", total,
                 [ KernelArg.Long(int64 total); KernelArg.Int n; KernelArg.Int idx.Shape[dim]; KernelArg.Int inner; KernelArg.Ptr t.Pointer; KernelArg.Ptr idx.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.SearchSorted(values, right) =
        let v = t.Other("searchSorted", values)
        let k = shape[shape.Length - 1]
        let m = if v.Rank = 0 then 1 else v.Shape[v.Rank - 1]
        let r = t.Fresh(v.Shape, Dtype.Int32, "searchSorted")
        let total = v.Numel
        t.Launch("search_sorted", total,
                 [ KernelArg.Long(int64 total); KernelArg.Int k; KernelArg.Int m; KernelArg.Int(if t.Numel = k then 1 else 0); KernelArg.Int(if right then 1 else 0)
                   KernelArg.Ptr t.Pointer; KernelArg.Ptr v.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.MatMul(other, transA, transB) =
        let o = t.Other("matmul", other)
        t.Float "matmul"
        let outShape, m, k, n = Shape.matmul shape o.Shape transA transB
        let r = t.Fresh(outShape, dtype, "matmul")
        let lda = shape[shape.Length - 1]
        let ldb = o.Shape[o.Rank - 1]
        let size = uint64 dtype.Size
        for struct (ao, bo, co) in CudaTensor.BatchOffsets(shape, o.Shape, outShape) do
            t.Gpu.Gemm(dtype, transA, transB, m, n, k, t.Pointer + uint64 ao * size, lda, o.Pointer + uint64 bo * size, ldb, r.Pointer + uint64 co * size)
        r

    override t.Triangle(lower, k) =
        let rows, cols = shape[shape.Length - 2], shape[shape.Length - 1]
        let r = t.Fresh(shape, dtype, "triangle")
        t.Launch("triangle", t.Numel,
                 [ KernelArg.Long(int64 t.Numel); KernelArg.Int rows; KernelArg.Int cols; KernelArg.Int(if lower then 1 else 0); KernelArg.Int k; KernelArg.Ptr t.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.SolveTriangular(b, upper, transpose, unitDiagonal) =
        let o = t.Other("solveTriangular", b)
        t.Float "solveTriangular"
        let n = shape[shape.Length - 1]
        let cols = o.Shape[o.Rank - 1]
        let batch = Shape.broadcast "solveTriangular" shape[.. shape.Length - 3] o.Shape[.. o.Rank - 3]
        let outShape = Array.append batch [| n; cols |]
        let offsets = CudaTensor.BatchOffsets(shape, o.Shape, outShape)
        let upload (pick: struct (int * int * int) -> int) =
            let values = offsets |> Array.map (pick >> int64)
            let buffer = t.Gpu.Pool.Rent(int64 (8 * max values.Length 1), "solveTriangular offsets")
            t.Gpu.Upload(values, buffer)
            buffer
        let aOffsets = upload (fun struct (a, _, _) -> a)
        let bOffsets = upload (fun struct (_, b, _) -> b)
        let r = t.Fresh(outShape, dtype, "solveTriangular")
        t.Launch("solve_triangular", offsets.Length * cols,
                 [ KernelArg.Int offsets.Length; KernelArg.Int n; KernelArg.Int cols; KernelArg.Int(if upper then 1 else 0)
                   KernelArg.Int(if transpose then 1 else 0); KernelArg.Int(if unitDiagonal then 1 else 0)
                   KernelArg.Ptr aOffsets.Pointer; KernelArg.Ptr bOffsets.Pointer; KernelArg.Ptr t.Pointer; KernelArg.Ptr o.Pointer; KernelArg.Ptr r.Pointer ])
        // the offset buffers must outlive the launch's place in the stream: keep them reachable until queued
        GC.KeepAlive aOffsets
        GC.KeepAlive bOffsets
        r

    override t.Lu() =
        t.Float "lu"
        let n = shape[shape.Length - 1]
        let batch = shape[.. shape.Length - 3]
        let count = Shape.numel batch
        let lu = t.Fresh(shape, dtype, "lu")
        t.Gpu.CopyDevice(buffer, 0L, lu.Buffer, int64 t.Numel * int64 dtype.Size)
        let perm = t.Fresh(Array.append batch [| n |], Dtype.Int32, "lu")
        let signs = t.Fresh(batch, dtype, "lu")
        t.Launch("lu", count, [ KernelArg.Int count; KernelArg.Int n; KernelArg.Ptr lu.Pointer; KernelArg.Ptr perm.Pointer; KernelArg.Ptr signs.Pointer ])
        lu, perm, signs

    override t.Dense(weight, bias, activation) =
        let w = t.Other("dense", weight)
        let b = t.Other("dense", bias)
        t.Float "dense"
        let n, inputs = shape[0], shape[1]
        let outputs = w.Shape[0]
        let r = t.Fresh([| n; outputs |], dtype, "dense")
        t.Gpu.Gemm(dtype, false, true, n, outputs, inputs, t.Pointer, inputs, w.Pointer, inputs, r.Pointer)
        let code, p = OpCodes.activation activation
        let total = n * outputs
        t.Launch("bias_activation", total,
                 [ KernelArg.Long(int64 total); KernelArg.Int outputs; KernelArg.Int code; KernelArg.Double p
                   KernelArg.Int(if b.Numel > 0 then 1 else 0); KernelArg.Ptr b.Pointer; KernelArg.Ptr r.Pointer ])
        r

    override t.ActivationGrad(activation, adjoint) =
        let g = t.Other("activationGrad", adjoint)
        t.Float "activationGrad"
        let code, p = OpCodes.activation activation
        let r = t.Fresh(shape, dtype, "activationGrad")
        t.Launch("activation_grad", t.Numel,
                 [ KernelArg.Long(int64 t.Numel); KernelArg.Int code; KernelArg.Double p; KernelArg.Ptr t.Pointer; KernelArg.Ptr g.Pointer; KernelArg.Ptr r.Pointer ])
        r

/// Creates tensors on one CUDA device.
and [<Sealed>] internal CudaBackend(gpu: CudaDevice) =

    /// Opens CUDA device `index` (the Registry calls this the first time `Device.Cuda index` is used).
    static member Open(index: int) : IBackend = CudaBackend(CudaDevice.Open index)

    /// The device this backend serves.
    member _.Gpu: CudaDevice = gpu

    member private b.Fresh(shape: int[], dtype: Dtype, op: string) =
        CudaTensor(gpu.Alloc(Shape.numel shape, dtype, $"{op} {Shape.show shape}"), shape, dtype, b)

    interface IBackend with
        member _.Device = gpu.Device

        member b.Full(shape, dtype, value) =
            let r = b.Fresh(shape, dtype, "full")
            let n = int64 r.Numel
            gpu.LaunchN("fill_" + OpCodes.suffix dtype, n, [ KernelArg.Long n; KernelArg.Double value; KernelArg.Ptr r.Pointer ])
            r

        member b.OfArray(array, shape) =
            let dtype =
                match array with
                | :? (float32[]) -> Dtype.Float32
                | :? (float[]) -> Dtype.Float64
                | :? (int[]) -> Dtype.Int32
                | _ -> invalidArg "data" $"expected float32[], float[] or int[], got {array.GetType().Name}"
            if not (array.Length = Shape.numel shape) then Shape.fail "ofArray" ($"{array.Length} elements cannot have shape {Shape.show shape}")
            let r = b.Fresh(shape, dtype, "ofArray")
            gpu.Upload(array, r.Buffer)
            r

        member b.Arange(n, dtype) =
            let r = b.Fresh([| n |], dtype, "arange")
            gpu.LaunchN("arange_" + OpCodes.suffix dtype, int64 n, [ KernelArg.Long(int64 n); KernelArg.Ptr r.Pointer ])
            r

        member b.Random(kind, shape, dtype, seed, offset) =
            let r = b.Fresh(shape, dtype, "random")
            let code, p, q = OpCodes.random kind
            let n = int64 r.Numel
            gpu.LaunchN("random_" + OpCodes.suffix dtype, n,
                        [ KernelArg.Int code; KernelArg.Double p; KernelArg.Double q; KernelArg.ULong seed; KernelArg.ULong offset; KernelArg.Long n; KernelArg.Ptr r.Pointer ])
            r

        member b.Cat(tensors, dim) =
            let first = tensors[0]
            let outShape = Array.copy first.Shape
            outShape[dim] <- tensors |> Array.sumBy (fun t -> t.Shape[dim])
            let r = b.Fresh(outShape, first.Dtype, "cat")
            let os = Shape.strides outShape
            let mutable at = 0
            for t in tensors do
                let c = r.Same("cat", t)
                if c.Dtype <> first.Dtype then invalidArg "tensors" "cat: tensors have different dtypes"
                gpu.LaunchN("strided_copy_" + OpCodes.suffix c.Dtype, int64 c.Numel,
                            [ KernelArg.Long(int64 c.Numel); KernelArg.Int c.Rank; Launch.dims "cat" c.Shape
                              KernelArg.Ptr c.Pointer; KernelArg.Long 0L; Launch.dims "cat" (Shape.strides c.Shape)
                              KernelArg.Ptr r.Pointer; KernelArg.Long(int64 (at * os[dim])); Launch.dims "cat" os ])
                at <- at + t.Shape[dim]
            r

    interface IDeviceMemory with
        member _.Stats() =
            let pool = gpu.Pool
            { InUse = pool.BytesInUse; Cached = pool.BytesCached; Rented = pool.BytesRented }
