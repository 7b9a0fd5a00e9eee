namespace Flows.Tensors.Backend.Cpu

// FS0009: the kernels address pinned memory through raw pointers.
#nowarn "9"

open System
open System.Numerics
open Microsoft.FSharp.NativeInterop

/// Products with at most `Limit` rows or columns, computed without packing: a bias gradient (a row of
/// ones times a matrix), a 2-unit output layer, a 1-feature input layer's weight gradient. A packed
/// kernel pads such a product to its whole micro-tile (12 x 32 in WideGemm) and packs an operand it
/// then barely reuses; here each element of the big operand is read once, in vectors.
module internal SkinnyGemm =
    /// The widest side handled here.
    [<Literal>]
    let Limit = 4

    let inline private mulAdd<'T when 'T :> INumberBase<'T>> (acc: 'T) (x: 'T) (y: 'T) = 'T.op_Addition(acc, 'T.op_Multiply(x, y))

    /// D (r x cols) = S (r x k) L (k x cols), r ≤ Limit: S's element (i, p) at s + i*si + p*sp, L's rows
    /// contiguous with stride ldl, D's rows contiguous with stride ldd. Vectors run along L's rows.
    let private broadcastRows<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T) and 'T :> INumberBase<'T>>
        r cols k (s: nativeptr<'T>) si sp (l: nativeptr<'T>) ldl (d: nativeptr<'T>) ldd =
        let w = Vector<'T>.Count
        let inline load (p: int) (j: int) = NativePtr.read (NativePtr.ofVoidPtr<Vector<'T>> (NativePtr.toVoidPtr (NativePtr.add l (p * ldl + j))))
        let inline store (i: int) (j: int) (v: Vector<'T>) = NativePtr.write (NativePtr.ofVoidPtr<Vector<'T>> (NativePtr.toVoidPtr (NativePtr.add d (i * ldd + j)))) v
        for i in 0 .. r - 1 do
            let row = NativePtr.add s (i * si)
            let mutable j = 0
            // Four vectors of columns at a time, for four independent accumulator chains.
            while j + 4 * w <= cols do
                let mutable a0 = Vector<'T>.Zero
                let mutable a1 = Vector<'T>.Zero
                let mutable a2 = Vector<'T>.Zero
                let mutable a3 = Vector<'T>.Zero
                for p in 0 .. k - 1 do
                    let x = Vector<'T>(NativePtr.get row (p * sp))
                    a0 <- a0 + x * load p j
                    a1 <- a1 + x * load p (j + w)
                    a2 <- a2 + x * load p (j + 2 * w)
                    a3 <- a3 + x * load p (j + 3 * w)
                store i j a0
                store i (j + w) a1
                store i (j + 2 * w) a2
                store i (j + 3 * w) a3
                j <- j + 4 * w
            while j + w <= cols do
                let mutable a = Vector<'T>.Zero
                for p in 0 .. k - 1 do
                    a <- a + Vector<'T>(NativePtr.get row (p * sp)) * load p j
                store i j a
                j <- j + w
            while j < cols do
                let mutable a = 'T.Zero
                for p in 0 .. k - 1 do
                    a <- mulAdd a (NativePtr.get row (p * sp)) (NativePtr.get l (p * ldl + j))
                NativePtr.set d (i * ldd + j) a
                j <- j + 1

    /// D (rows x r) = L (rows x k) Sᵀ, r ≤ Limit: L's rows contiguous with stride ldl, S (r x k) gathered
    /// into `t` (r x k, contiguous) from element (j, p) at s + j*sj + p*sp; D's element (i, j) written at
    /// d + i*di + j*dj. Vectors run along the depth, one dot product per element of D.
    let private dotRows<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T) and 'T :> INumberBase<'T>>
        rows r k (l: nativeptr<'T>) ldl (s: nativeptr<'T>) sj sp (t: nativeptr<'T>) (d: nativeptr<'T>) di dj =
        for j in 0 .. r - 1 do
            for p in 0 .. k - 1 do
                NativePtr.set t (j * k + p) (NativePtr.get s (j * sj + p * sp))
        let w = Vector<'T>.Count
        let inline load (ptr: nativeptr<'T>) (p: int) = NativePtr.read (NativePtr.ofVoidPtr<Vector<'T>> (NativePtr.toVoidPtr (NativePtr.add ptr p)))
        // S's rows past r alias row 0, so the four chains need no test inside the loop.
        let t0, t1, t2, t3 = t, NativePtr.add t ((min 1 (r - 1)) * k), NativePtr.add t ((min 2 (r - 1)) * k), NativePtr.add t ((min 3 (r - 1)) * k)
        for i in 0 .. rows - 1 do
            let row = NativePtr.add l (i * ldl)
            let mutable s0 = Vector<'T>.Zero
            let mutable s1 = Vector<'T>.Zero
            let mutable s2 = Vector<'T>.Zero
            let mutable s3 = Vector<'T>.Zero
            let mutable p = 0
            while p + w <= k do
                let x = load row p
                s0 <- s0 + x * load t0 p
                s1 <- s1 + x * load t1 p
                s2 <- s2 + x * load t2 p
                s3 <- s3 + x * load t3 p
                p <- p + w
            for j in 0 .. r - 1 do
                let mutable total = Vector.Sum(if j = 0 then s0 elif j = 1 then s1 elif j = 2 then s2 else s3)
                for q in p .. k - 1 do
                    total <- mulAdd total (NativePtr.get row q) (NativePtr.get t (j * k + q))
                NativePtr.set d (i * di + j * dj) total

    /// Whether `multiply` takes an m x n product.
    let takes m n = m <= Limit || n <= Limit

    /// C = op(A) op(B) for m ≤ Limit or n ≤ Limit (arguments checked, m, n, k positive): each case runs
    /// the kernel whose vectors follow a contiguous side of the big operand.
    let multiply<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T) and 'T :> INumberBase<'T>>
        transA transB m n k (a: nativeptr<'T>) lda (b: nativeptr<'T>) ldb (c: nativeptr<'T>) ldc =
        // op(A)'s element (i, p) at a + i*ai + p*ap; op(B)'s element (p, j) at b + p*bp + j*bj.
        let ai, ap = if transA then 1, lda else lda, 1
        let bp, bj = if transB then 1, ldb else ldb, 1
        if m <= Limit && not transB then
            // Rows of C are combinations of B's rows.
            broadcastRows m n k a ai ap b ldb c ldc
        elif m <= Limit then
            // Cᵀ = B op(A)ᵀ: dot products of B's rows (contiguous along the depth) with op(A)'s rows.
            let t = GemmWorkspace<'T>.Get(m * k)
            use pt = fixed t
            dotRows n m k b ldb a ai ap pt c 1 ldc
        elif not transA then
            // Dot products of A's rows with op(B)'s columns.
            let t = GemmWorkspace<'T>.Get(n * k)
            use pt = fixed t
            dotRows m n k a lda b bj bp pt c ldc 1
        else
            // Cᵀ = op(B)ᵀ A: rows combining A's rows (contiguous along C's rows), then transposed into C.
            let t = GemmWorkspace<'T>.Get(n * m)
            use pt = fixed t
            broadcastRows n m k b bj bp a lda pt m
            for j in 0 .. n - 1 do
                for i in 0 .. m - 1 do
                    NativePtr.set c (i * ldc + j) (NativePtr.get pt (j * m + i))

    /// The entry of the managed providers: arguments checked, operands pinned, a skinny product computed
    /// here and any other passed to `packed` (the provider's packed kernel).
    let inline entry
        transA transB m n k (a: ReadOnlySpan<'T>) lda (b: ReadOnlySpan<'T>) ldb (c: Span<'T>) ldc
        ([<InlineIfLambda>] packed: nativeptr<'T> -> nativeptr<'T> -> nativeptr<'T> -> unit) =
        GemmContract.pinned transA transB m n k a lda b ldb c ldc (fun pa pb pc ->
            // A few rows or columns would fill a fraction of a packed kernel's tile (a sixth of WideGemm's 12 x 32).
            if takes m n then multiply transA transB m n k pa lda pb ldb pc ldc else packed pa pb pc)
