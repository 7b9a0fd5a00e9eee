namespace Flows.Tensors.Backend.Cpu

// FS0009: the kernels address pinned memory through raw pointers; that is what makes them fast.
#nowarn "9"

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// Managed packed GEMM on 512-bit vectors, for processors with AVX-512 (ManagedGemm is the 256-bit
/// one): the same GEBP blocking with a 12 x 2-vector micro-tile, 24 of the 32 zmm registers.
///
/// op(A) is packed in one of two layouts, whichever is a plain copy of its storage, so packing costs a
/// memory copy and not a transpose: rows of A stay rows (element (i, p) of a panel at i*Kc + p, the
/// row stride a constant, so each broadcast has a fixed displacement), and columns of a transposed A
/// stay MR-wide strips (element (i, p) at p*MR + i).
module WideGemm =
    [<Literal>]
    let private Mr = 12

    // A Kc x NR micro-panel of B (256 x 32 float32 or 256 x 16 float64: 32 KiB) stays in a 48 KiB L1
    // while the 12 x Kc panels of A (12 or 24 KiB) stream past it; 128 and 192 measured a few per cent
    // slower on the two-moons shapes (bench gemm).
    [<Literal>]
    let private Kc = 256

    // An MC x KC block of A (144 or 288 KiB) stays in L2; a multiple of Mr.
    [<Literal>]
    let private Mc = 144

    // A KC x NC block of B (1 or 2 MiB) is reused across all row blocks from L2 and L3.
    [<Literal>]
    let private Nc = 2048

    /// Whether this process can run the kernel: AVX-512F present and 512-bit vectors accelerated (the
    /// runtime leaves them off on processors where they lower the clock; DOTNET_PreferredVectorBitWidth).
    let isSupported = Avx512F.IsSupported && Vector512.IsHardwareAccelerated

    /// Micro-tile width: two Vector512 per row (32 float32 or 16 float64).
    let inline private panelWidth<'T> () = 2 * Vector512<'T>.Count

    // The typeof tests are JIT-time constants, so each instantiation keeps exactly one branch.
    let inline private fma (x: Vector512<'T>) (y: Vector512<'T>) (acc: Vector512<'T>) : Vector512<'T> =
        if Type.op_Equality (typeof<'T>, typeof<float32>) then
            Vector512.As<float32, 'T>(
                Avx512F.FusedMultiplyAdd(Vector512.As<'T, float32> x, Vector512.As<'T, float32> y, Vector512.As<'T, float32> acc))
        else
            Vector512.As<float, 'T>(
                Avx512F.FusedMultiplyAdd(Vector512.As<'T, float> x, Vector512.As<'T, float> y, Vector512.As<'T, float> acc))

    let inline private put (c: nativeptr<'T>) (offset: int) (accumulate: bool) (v: Vector512<'T>) =
        let dst = NativePtr.add c offset
        Vector512.Store((if accumulate then Vector512.Add(Vector512.Load dst, v) else v), dst)

    /// C (12 x NR, row stride ldc) = or += an A panel x a packed B panel, element (i, p) of the A panel at
    /// i*rowStep + p*depthStep. Inlined with constant steps, so every A broadcast is a fixed displacement.
    let inline private tileKernel
        (rowStep: int) (depthStep: int) (kc: int) (ap: nativeptr<'T>) (bp: nativeptr<'T>) (c: nativeptr<'T>) (ldc: int) (accumulate: bool) =
        let w = Vector512<'T>.Count
        let mutable c00 = Vector512<'T>.Zero
        let mutable c01 = Vector512<'T>.Zero
        let mutable c10 = Vector512<'T>.Zero
        let mutable c11 = Vector512<'T>.Zero
        let mutable c20 = Vector512<'T>.Zero
        let mutable c21 = Vector512<'T>.Zero
        let mutable c30 = Vector512<'T>.Zero
        let mutable c31 = Vector512<'T>.Zero
        let mutable c40 = Vector512<'T>.Zero
        let mutable c41 = Vector512<'T>.Zero
        let mutable c50 = Vector512<'T>.Zero
        let mutable c51 = Vector512<'T>.Zero
        let mutable c60 = Vector512<'T>.Zero
        let mutable c61 = Vector512<'T>.Zero
        let mutable c70 = Vector512<'T>.Zero
        let mutable c71 = Vector512<'T>.Zero
        let mutable c80 = Vector512<'T>.Zero
        let mutable c81 = Vector512<'T>.Zero
        let mutable c90 = Vector512<'T>.Zero
        let mutable c91 = Vector512<'T>.Zero
        let mutable ca0 = Vector512<'T>.Zero
        let mutable ca1 = Vector512<'T>.Zero
        let mutable cb0 = Vector512<'T>.Zero
        let mutable cb1 = Vector512<'T>.Zero
        let mutable pa = ap
        let mutable pb = bp
        let mutable p = 0
        while p < kc do
            let b0 = Vector512.Load pb
            let b1 = Vector512.Load(NativePtr.add pb w)
            let a0 = Vector512.Create(NativePtr.get pa 0)
            c00 <- fma a0 b0 c00
            c01 <- fma a0 b1 c01
            let a1 = Vector512.Create(NativePtr.get pa rowStep)
            c10 <- fma a1 b0 c10
            c11 <- fma a1 b1 c11
            let a2 = Vector512.Create(NativePtr.get pa (2 * rowStep))
            c20 <- fma a2 b0 c20
            c21 <- fma a2 b1 c21
            let a3 = Vector512.Create(NativePtr.get pa (3 * rowStep))
            c30 <- fma a3 b0 c30
            c31 <- fma a3 b1 c31
            let a4 = Vector512.Create(NativePtr.get pa (4 * rowStep))
            c40 <- fma a4 b0 c40
            c41 <- fma a4 b1 c41
            let a5 = Vector512.Create(NativePtr.get pa (5 * rowStep))
            c50 <- fma a5 b0 c50
            c51 <- fma a5 b1 c51
            let a6 = Vector512.Create(NativePtr.get pa (6 * rowStep))
            c60 <- fma a6 b0 c60
            c61 <- fma a6 b1 c61
            let a7 = Vector512.Create(NativePtr.get pa (7 * rowStep))
            c70 <- fma a7 b0 c70
            c71 <- fma a7 b1 c71
            let a8 = Vector512.Create(NativePtr.get pa (8 * rowStep))
            c80 <- fma a8 b0 c80
            c81 <- fma a8 b1 c81
            let a9 = Vector512.Create(NativePtr.get pa (9 * rowStep))
            c90 <- fma a9 b0 c90
            c91 <- fma a9 b1 c91
            let aa = Vector512.Create(NativePtr.get pa (10 * rowStep))
            ca0 <- fma aa b0 ca0
            ca1 <- fma aa b1 ca1
            let ab = Vector512.Create(NativePtr.get pa (11 * rowStep))
            cb0 <- fma ab b0 cb0
            cb1 <- fma ab b1 cb1
            pa <- NativePtr.add pa depthStep
            pb <- NativePtr.add pb (2 * w)
            p <- p + 1
        put c 0 accumulate c00
        put c w accumulate c01
        put c ldc accumulate c10
        put c (ldc + w) accumulate c11
        put c (2 * ldc) accumulate c20
        put c (2 * ldc + w) accumulate c21
        put c (3 * ldc) accumulate c30
        put c (3 * ldc + w) accumulate c31
        put c (4 * ldc) accumulate c40
        put c (4 * ldc + w) accumulate c41
        put c (5 * ldc) accumulate c50
        put c (5 * ldc + w) accumulate c51
        put c (6 * ldc) accumulate c60
        put c (6 * ldc + w) accumulate c61
        put c (7 * ldc) accumulate c70
        put c (7 * ldc + w) accumulate c71
        put c (8 * ldc) accumulate c80
        put c (8 * ldc + w) accumulate c81
        put c (9 * ldc) accumulate c90
        put c (9 * ldc + w) accumulate c91
        put c (10 * ldc) accumulate ca0
        put c (10 * ldc + w) accumulate ca1
        put c (11 * ldc) accumulate cb0
        put c (11 * ldc + w) accumulate cb1

    // The two A layouts, each its own compiled kernel.
    let private rowsKernel<'T when 'T: unmanaged> kc (ap: nativeptr<'T>) bp c ldc accumulate =
        tileKernel Kc 1 kc ap bp c ldc accumulate

    let private stripsKernel<'T when 'T: unmanaged> kc (ap: nativeptr<'T>) bp c ldc accumulate =
        tileKernel 1 Mr kc ap bp c ldc accumulate

    /// One mr x nr block of C; edge blocks go through a full-size scratch tile so the kernel never
    /// touches memory outside C.
    let private microTile<'T when 'T: unmanaged> transA kc ap bp (c: nativeptr<'T>) ldc accumulate mr nr (tile: nativeptr<'T>) =
        let width = panelWidth<'T> ()
        let full = mr = Mr && nr = width
        let target, ld = if full then c, ldc else tile, width
        if accumulate && not full then ManagedGemm.copyTile c ldc tile width mr nr
        if transA then stripsKernel kc ap bp target ld accumulate else rowsKernel kc ap bp target ld accumulate
        if not full then ManagedGemm.copyTile tile width c ldc mr nr

    /// Packs rows [ic, ic+mc) x depth [pc, pc+kc) of op(A). Untransposed, row i goes to i*Kc (a row
    /// copy); transposed, each MR-row panel's depth step p goes to p*MR (a copy of MR adjacent elements).
    /// Rows past mc in the last panel are zeroed so no stale value reaches the scratch tile.
    let private packA<'T when 'T: unmanaged> transA (a: nativeptr<'T>) lda ic pc mc kc (dst: nativeptr<'T>) =
        let rows = ManagedGemm.roundUp mc Mr
        if transA then
            let mutable ir = 0
            while ir < rows do
                let valid = min Mr (mc - ir)
                let panel = NativePtr.add dst (ir * kc)
                for p in 0 .. kc - 1 do
                    let src = NativePtr.add a ((pc + p) * lda + ic + ir)
                    let row = NativePtr.add panel (p * Mr)
                    if valid = Mr then
                        // A constant-size copy, which the JIT unrolls into vector moves.
                        Unsafe.CopyBlockUnaligned(NativePtr.toVoidPtr row, NativePtr.toVoidPtr src, uint32 (Mr * sizeof<'T>))
                    else
                        for i in 0 .. Mr - 1 do
                            NativePtr.set row i (if i < valid then NativePtr.get src i else Unchecked.defaultof<'T>)
                ir <- ir + Mr
        else
            for i in 0 .. rows - 1 do
                let row = Span<'T>(NativePtr.toVoidPtr (NativePtr.add dst (i * Kc)), kc)
                if i >= mc then
                    row.Clear()
                elif kc < 16 then
                    // Shallow products (an input layer's k of 1 or 2): a loop beats a call per row.
                    let src = NativePtr.add a ((ic + i) * lda + pc)
                    for p in 0 .. kc - 1 do
                        row[p] <- NativePtr.get src p
                else
                    Span<'T>(NativePtr.toVoidPtr (NativePtr.add a ((ic + i) * lda + pc)), kc).CopyTo row

    /// C = op(A) x op(B) over raw pointers; arguments checked, and m, n, k all positive.
    let private multiply<'T when 'T: unmanaged>
        transA transB m n k (a: nativeptr<'T>) lda (b: nativeptr<'T>) ldb (c: nativeptr<'T>) ldc =
        let nr = panelWidth<'T> ()
        let lineElements = 64 / sizeof<'T>
        let aLength = ManagedGemm.roundUp (ManagedGemm.roundUp (min m Mc) Mr * Kc) lineElements
        let bLength = ManagedGemm.roundUp (min k Kc * ManagedGemm.roundUp (min n Nc) nr) lineElements
        let packedA = GemmWorkspace<'T>.Aligned(aLength + bLength + Mr * nr)
        let packedB = NativePtr.add packedA aLength
        let tile = NativePtr.add packedB bLength
        let mutable jc = 0
        while jc < n do
            let nc = min Nc (n - jc)
            let mutable pc = 0
            while pc < k do
                let kc = min Kc (k - pc)
                ManagedGemm.packB nr transB b ldb pc jc kc nc packedB
                let mutable ic = 0
                while ic < m do
                    let mc = min Mc (m - ic)
                    packA transA a lda ic pc mc kc packedA
                    // A panel ir starts at ir*Kc in the row layout, at ir*kc in the strip layout.
                    let panelStride = if transA then kc else Kc
                    // jr outside ir: one B micro-panel stays in L1 while the A block streams from L2.
                    let mutable jr = 0
                    while jr < nc do
                        let mutable ir = 0
                        while ir < mc do
                            let cTile = NativePtr.add c ((ic + ir) * ldc + jc + jr)
                            microTile
                                transA kc (NativePtr.add packedA (ir * panelStride)) (NativePtr.add packedB (jr * kc))
                                cTile ldc (pc > 0) (min Mr (mc - ir)) (min nr (nc - jr)) tile
                            ir <- ir + Mr
                        jr <- jr + nr
                    ic <- ic + Mc
                pc <- pc + Kc
            jc <- jc + Nc

    let private run<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T) and 'T :> Numerics.INumberBase<'T>>
        transA transB m n k (a: ReadOnlySpan<'T>) lda (b: ReadOnlySpan<'T>) ldb (c: Span<'T>) ldc =
        SkinnyGemm.entry transA transB m n k a lda b ldb c ldc (fun pa pb pc -> multiply transA transB m n k pa lda pb ldb pc ldc)

    /// The 512-bit managed provider ("managed-avx512"), or None where `isSupported` is false.
    let provider: IGemmProvider option =
        if not isSupported then
            None
        else
            Some
                { new IGemmProvider with
                    member _.Name = "managed-avx512"
                    member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                        run transA transB m n k a lda b ldb c ldc
                    member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                        run transA transB m n k a lda b ldb c ldc }
