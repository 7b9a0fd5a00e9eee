namespace Flows.Tensors

open System

/// Shapes are int arrays, row-major; the empty array is a scalar.
[<RequireQualifiedAccess>]
module Shape =

    /// Text of a shape as NumPy prints it, for error messages.
    let show (shape: int[]) = "[" + String.Join(", ", shape) + "]"

    /// Number of elements.
    let numel (shape: int[]) =
        let mutable n = 1
        for d in shape do n <- n * d
        n

    /// Row-major strides of a contiguous tensor.
    let strides (shape: int[]) =
        let s = Array.zeroCreate shape.Length
        let mutable acc = 1
        for i in shape.Length - 1 .. -1 .. 0 do
            s[i] <- acc
            acc <- acc * shape[i]
        s

    /// Raises an ArgumentException naming the op (callers test the condition first, so the
    /// message is only formatted when it is needed: op code runs thousands of times a second).
    let fail (op: string) (message: string) : unit = invalidArg op $"{op}: {message}"

    /// Checks every dimension is non-negative.
    let validate (op: string) (shape: int[]) =
        if not (shape |> Array.forall (fun d -> d >= 0)) then fail op ($"dimensions must be non-negative, got {show shape}")

    /// Resolves a possibly negative dimension index against a rank.
    let dim (op: string) (rank: int) (d: int) =
        let r = if d < 0 then d + rank else d
        if not (r >= 0 && r < rank) then fail op ($"dimension {d} is out of range for a tensor of rank {rank}")
        r

    /// NumPy broadcasting of two shapes, or an error naming the op and both shapes.
    let broadcast (op: obj) (a: int[]) (b: int[]) =
        let n = max a.Length b.Length
        Array.init n (fun i ->
            let da = let j = i - (n - a.Length) in if j >= 0 then a[j] else 1
            let db = let j = i - (n - b.Length) in if j >= 0 then b[j] else 1
            if da = db then da
            elif da = 1 then db
            elif db = 1 then da
            else invalidArg (string op) $"{op}: shapes {show a} and {show b} cannot be broadcast together")

    /// True when `source` broadcasts to `target` without changing `target`.
    let broadcastsTo (source: int[]) (target: int[]) =
        source.Length <= target.Length
        && Array.forall2 (fun s t -> s = 1 || s = t) source target[target.Length - source.Length ..]

    /// Strides to read `source` as if it had `target`'s shape: zero along broadcast dimensions.
    let broadcastStrides (source: int[]) (target: int[]) =
        let s = strides source
        let offset = target.Length - source.Length
        Array.init target.Length (fun i ->
            let j = i - offset
            if j < 0 || source[j] = 1 then 0 else s[j])

    /// Shape after removing (or keeping as 1) dimension `d`.
    let reduceDim (shape: int[]) (d: int) (keepDim: bool) =
        if keepDim then shape |> Array.mapi (fun i n -> if i = d then 1 else n)
        else shape |> Array.removeAt d

    /// Resolves a -1 in a reshape target against the element count.
    let resolveView (op: string) (numel': int) (target: int[]) =
        let unknown = target |> Array.filter (fun d -> d = -1) |> Array.length
        if not (unknown <= 1) then fail op ($"at most one dimension may be -1, got {show target}")
        let known = target |> Array.filter (fun d -> d <> -1) |> Array.fold (*) 1
        let resolved =
            if unknown = 1 then
                if not (known > 0 && numel' % known = 0) then fail op ($"cannot view {numel'} elements as {show target}")
                target |> Array.map (fun d -> if d = -1 then numel' / known else d)
            else target
        if not (numel resolved = numel') then fail op ($"cannot view {numel'} elements as {show target}")
        resolved

    /// Shape of a batched matrix product [..., m, k] x [..., k, n] with broadcast batch dimensions.
    let matmul (a: int[]) (b: int[]) (transA: bool) (transB: bool) =
        if not (a.Length >= 2 && b.Length >= 2) then fail "matmul" ($"both operands need rank >= 2, got {show a} and {show b}")
        let m, ka = if transA then a[a.Length - 1], a[a.Length - 2] else a[a.Length - 2], a[a.Length - 1]
        let kb, n = if transB then b[b.Length - 1], b[b.Length - 2] else b[b.Length - 2], b[b.Length - 1]
        if not (ka = kb) then fail "matmul" ($"inner dimensions differ: {show a} x {show b} (transA={transA}, transB={transB})")
        let batchA, batchB = a[.. a.Length - 3], b[.. b.Length - 3]
        let common = min batchA.Length batchB.Length
        if not (Array.forall2 (fun x y -> x = y || x = 1 || y = 1) batchA[batchA.Length - common ..] batchB[batchB.Length - common ..]) then
            invalidArg "matmul" $"matmul: batch dimensions do not broadcast: {show a} x {show b}"
        let batch = broadcast "matmul" batchA batchB
        Array.append batch [| m; n |], m, ka, n

    /// Calls `product aOffset bOffset cOffset` for every matrix pair of a broadcast batched product.
    let internal batches (aShape: int[]) (bShape: int[]) (outShape: int[]) (product: int -> int -> int -> unit) =
        let rank = outShape.Length
        let batchShape = outShape[.. rank - 3]
        let aMat = aShape[aShape.Length - 2] * aShape[aShape.Length - 1]
        let bMat = bShape[bShape.Length - 2] * bShape[bShape.Length - 1]
        let cMat = outShape[rank - 2] * outShape[rank - 1]
        let aStrides = broadcastStrides aShape[.. aShape.Length - 3] batchShape
        let bStrides = broadcastStrides bShape[.. bShape.Length - 3] batchShape
        let count = numel batchShape
        let index = Array.zeroCreate<int> batchShape.Length
        for c in 0 .. count - 1 do
            let mutable ao = 0
            let mutable bo = 0
            for d in 0 .. batchShape.Length - 1 do
                ao <- ao + index[d] * aStrides[d]
                bo <- bo + index[d] * bStrides[d]
            product (ao * aMat) (bo * bMat) (c * cMat)
            let mutable d = batchShape.Length - 1
            let mutable carry = true
            while carry && d >= 0 do
                index[d] <- index[d] + 1
                if index[d] < batchShape[d] then carry <- false
                else
                    index[d] <- 0
                    d <- d - 1
