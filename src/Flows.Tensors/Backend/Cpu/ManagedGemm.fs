namespace Flows.Tensors.Backend.Cpu

// FS0009: the kernels address pinned memory through raw pointers; that is what makes them fast.
#nowarn "9"

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// Managed packed GEMM in the GEBP style (Goto and van de Geijn, "Anatomy of High-Performance Matrix
/// Multiplication", 2008): op(B) is packed into KC x NR panels and op(A) into MR x KC panels, so one
/// register-blocked MR x NR micro-kernel serves every transpose combination and streams cache-resident data.
module ManagedGemm =
    // 6 rows x 2 vectors = 12 accumulators; with 2 B vectors and 1 broadcast that fills the 16 ymm registers.
    [<Literal>]
    let private Mr = 6

    // A KC-deep B micro-panel (256 x 16 floats = 16 KiB) stays in the 32 KiB L1 while A panels stream past it.
    [<Literal>]
    let private Kc = 256

    // An MC x KC block of A (120 KiB float32, 240 KiB float64) stays in L2; a multiple of Mr.
    [<Literal>]
    let private Mc = 120

    // A KC x NC block of B (2 MiB float32) is reused across all row blocks from L3.
    [<Literal>]
    let private Nc = 2048

    /// Micro-tile width: two Vector256 per row (16 float32 or 8 float64).
    let inline private panelWidth<'T> () = 2 * Vector256<'T>.Count

    let inline internal roundUp (x: int) (multiple: int) = (x + multiple - 1) / multiple * multiple

    // The typeof tests are JIT-time constants, so each instantiation keeps exactly one branch.
    let inline private fma (x: Vector256<'T>) (y: Vector256<'T>) (acc: Vector256<'T>) : Vector256<'T> =
        if Fma.IsSupported && Type.op_Equality (typeof<'T>, typeof<float32>) then
            Vector256.As<float32, 'T>(
                Fma.MultiplyAdd(Vector256.As<'T, float32> x, Vector256.As<'T, float32> y, Vector256.As<'T, float32> acc))
        elif Fma.IsSupported && Type.op_Equality (typeof<'T>, typeof<float>) then
            Vector256.As<float, 'T>(
                Fma.MultiplyAdd(Vector256.As<'T, float> x, Vector256.As<'T, float> y, Vector256.As<'T, float> acc))
        else
            Vector256.Add(Vector256.Multiply(x, y), acc)

    let inline private put (c: nativeptr<'T>) (offset: int) (accumulate: bool) (v: Vector256<'T>) =
        let dst = NativePtr.add c offset
        Vector256.Store((if accumulate then Vector256.Add(Vector256.Load dst, v) else v), dst)

    /// C (6 x NR, row stride ldc) = or += packed A panel x packed B panel, in 12 ymm accumulators.
    let private simdKernel<'T when 'T: unmanaged>
        (kc: int) (ap: nativeptr<'T>) (bp: nativeptr<'T>) (c: nativeptr<'T>) (ldc: int) (accumulate: bool) =
        let w = Vector256<'T>.Count
        let mutable c00 = Vector256<'T>.Zero
        let mutable c01 = Vector256<'T>.Zero
        let mutable c10 = Vector256<'T>.Zero
        let mutable c11 = Vector256<'T>.Zero
        let mutable c20 = Vector256<'T>.Zero
        let mutable c21 = Vector256<'T>.Zero
        let mutable c30 = Vector256<'T>.Zero
        let mutable c31 = Vector256<'T>.Zero
        let mutable c40 = Vector256<'T>.Zero
        let mutable c41 = Vector256<'T>.Zero
        let mutable c50 = Vector256<'T>.Zero
        let mutable c51 = Vector256<'T>.Zero
        let mutable pa = ap
        let mutable pb = bp
        let mutable p = 0
        while p < kc do
            let b0 = Vector256.Load pb
            let b1 = Vector256.Load(NativePtr.add pb w)
            let a0 = Vector256.Create(NativePtr.get pa 0)
            c00 <- fma a0 b0 c00
            c01 <- fma a0 b1 c01
            let a1 = Vector256.Create(NativePtr.get pa 1)
            c10 <- fma a1 b0 c10
            c11 <- fma a1 b1 c11
            let a2 = Vector256.Create(NativePtr.get pa 2)
            c20 <- fma a2 b0 c20
            c21 <- fma a2 b1 c21
            let a3 = Vector256.Create(NativePtr.get pa 3)
            c30 <- fma a3 b0 c30
            c31 <- fma a3 b1 c31
            let a4 = Vector256.Create(NativePtr.get pa 4)
            c40 <- fma a4 b0 c40
            c41 <- fma a4 b1 c41
            let a5 = Vector256.Create(NativePtr.get pa 5)
            c50 <- fma a5 b0 c50
            c51 <- fma a5 b1 c51
            pa <- NativePtr.add pa Mr
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

    /// The same contract as simdKernel for machines without 256-bit SIMD, on System.Numerics.Vector.
    let private portableKernel<'T when 'T: unmanaged>
        (kc: int) (ap: nativeptr<'T>) (bp: nativeptr<'T>) (c: nativeptr<'T>) (ldc: int) (accumulate: bool) =
        let nr = panelWidth<'T> ()
        for i in 0 .. Mr - 1 do
            let mutable j = 0
            while j < nr do
                let dst = NativePtr.toVoidPtr (NativePtr.add c (i * ldc + j))
                let mutable acc = if accumulate then Unsafe.ReadUnaligned<Vector<'T>> dst else Vector<'T>.Zero
                for p in 0 .. kc - 1 do
                    let a = Vector<'T>(NativePtr.get ap (p * Mr + i))
                    let b = Unsafe.ReadUnaligned<Vector<'T>>(NativePtr.toVoidPtr (NativePtr.add bp (p * nr + j)))
                    acc <- acc + a * b
                Unsafe.WriteUnaligned(dst, acc)
                j <- j + Vector<'T>.Count

    let internal copyTile (src: nativeptr<'T>) (lds: int) (dst: nativeptr<'T>) (ldd: int) (rows: int) (cols: int) =
        for i in 0 .. rows - 1 do
            for j in 0 .. cols - 1 do
                NativePtr.set dst (i * ldd + j) (NativePtr.get src (i * lds + j))

    // Vector256.IsHardwareAccelerated is a JIT-time constant: each process keeps one of the two calls.
    let private kernel<'T when 'T: unmanaged> kc ap bp (c: nativeptr<'T>) ldc accumulate =
        if Vector256.IsHardwareAccelerated then
            simdKernel<'T> kc ap bp c ldc accumulate
        else
            portableKernel<'T> kc ap bp c ldc accumulate

    /// One mr x nr block of C; edge blocks go through a full-size scratch tile so the kernel never
    /// touches memory outside C.
    let private microTile<'T when 'T: unmanaged>
        kc ap bp (c: nativeptr<'T>) ldc accumulate mr nr (tile: nativeptr<'T>) =
        let width = panelWidth<'T> ()
        if mr = Mr && nr = width then
            kernel kc ap bp c ldc accumulate
        else
            if accumulate then copyTile c ldc tile width mr nr
            kernel kc ap bp tile width accumulate
            copyTile tile width c ldc mr nr

    /// Packs rows [ic, ic+mc) x depth [pc, pc+kc) of op(A) into MR-row panels, element (i, p) of a
    /// panel at p*MR + i, zero-padding the last panel so the kernel needs no row test.
    let private packA transA (a: nativeptr<'T>) lda ic pc mc kc (dst: nativeptr<'T>) =
        let mutable ir = 0
        while ir < mc do
            let rows = min Mr (mc - ir)
            let panel = NativePtr.add dst (ir * kc)
            for p in 0 .. kc - 1 do
                for i in 0 .. Mr - 1 do
                    let v =
                        if i >= rows then Unchecked.defaultof<'T>
                        elif transA then NativePtr.get a ((pc + p) * lda + ic + ir + i)
                        else NativePtr.get a ((ic + ir + i) * lda + pc + p)
                    NativePtr.set panel (p * Mr + i) v
            ir <- ir + Mr

    /// Packs depth [pc, pc+kc) x columns [jc, jc+nc) of op(B) into nr-column panels, element (p, j) of a
    /// panel at p*nr + j, zero-padding the last panel; for both managed kernels (nr their tile width).
    let internal packB<'T when 'T: unmanaged> nr transB (b: nativeptr<'T>) ldb pc jc kc nc (dst: nativeptr<'T>) =
        let mutable jr = 0
        while jr < nc do
            let cols = min nr (nc - jr)
            let panel = NativePtr.add dst (jr * kc)
            for p in 0 .. kc - 1 do
                let row = NativePtr.add panel (p * nr)
                if transB then
                    // Column j of op(B) is row j of B. Writing the panel in order and reading the rows side
                    // by side (each a sequential stream) measured faster than a contiguous read scattered by nr.
                    let src = NativePtr.add b ((jc + jr) * ldb + pc + p)
                    for j in 0 .. cols - 1 do
                        NativePtr.set row j (NativePtr.get src (j * ldb))
                else
                    Span<'T>(NativePtr.toVoidPtr (NativePtr.add b ((pc + p) * ldb + jc + jr)), cols)
                        .CopyTo(Span<'T>(NativePtr.toVoidPtr row, cols))
                if cols < nr then Span<'T>(NativePtr.toVoidPtr (NativePtr.add row cols), nr - cols).Clear()
            jr <- jr + nr

    /// C = op(A) x op(B) over raw pointers; arguments checked, and m, n, k all positive.
    let private multiply<'T when 'T: unmanaged>
        transA transB m n k (a: nativeptr<'T>) lda (b: nativeptr<'T>) ldb (c: nativeptr<'T>) ldc =
        let nr = panelWidth<'T> ()
        let lineElements = 64 / sizeof<'T>
        let depth = min k Kc
        let aLength = roundUp (roundUp (min m Mc) Mr * depth) lineElements
        let bLength = roundUp (depth * roundUp (min n Nc) nr) lineElements
        let packedA = GemmWorkspace<'T>.Aligned(aLength + bLength + Mr * nr)
        let packedB = NativePtr.add packedA aLength
        let tile = NativePtr.add packedB bLength
        let mutable jc = 0
        while jc < n do
            let nc = min Nc (n - jc)
            let mutable pc = 0
            while pc < k do
                let kc = min Kc (k - pc)
                packB nr transB b ldb pc jc kc nc packedB
                let mutable ic = 0
                while ic < m do
                    let mc = min Mc (m - ic)
                    packA transA a lda ic pc mc kc packedA
                    // jr outside ir: one B micro-panel stays in L1 while the A block streams from L2.
                    let mutable jr = 0
                    while jr < nc do
                        let mutable ir = 0
                        while ir < mc do
                            let cTile = NativePtr.add c ((ic + ir) * ldc + jc + jr)
                            microTile
                                kc (NativePtr.add packedA (ir * kc)) (NativePtr.add packedB (jr * kc))
                                cTile ldc (pc > 0) (min Mr (mc - ir)) (min nr (nc - jr)) tile
                            ir <- ir + Mr
                        jr <- jr + nr
                    ic <- ic + Mc
                pc <- pc + Kc
            jc <- jc + Nc

    let private run<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T) and 'T :> INumberBase<'T>>
        transA transB m n k (a: ReadOnlySpan<'T>) lda (b: ReadOnlySpan<'T>) ldb (c: Span<'T>) ldc =
        SkinnyGemm.entry transA transB m n k a lda b ldb c ldc (fun pa pb pc -> multiply transA transB m n k pa lda pb ldb pc ldc)

    /// The managed provider ("managed"): always available, single-threaded, no native dependency.
    let provider: IGemmProvider =
        { new IGemmProvider with
            member _.Name = "managed"
            member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                run transA transB m n k a lda b ldb c ldc
            member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                run transA transB m n k a lda b ldb c ldc }
