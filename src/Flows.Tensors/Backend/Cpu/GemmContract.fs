namespace Flows.Tensors.Backend.Cpu

// FS0009: the entry pins the operands for the kernels' raw pointers.
#nowarn "9"

open System
open System.Runtime.InteropServices
open Microsoft.FSharp.NativeInterop

/// What every GEMM provider shares at its boundary: argument checks (a short span or stride would let
/// native code read or write outside the caller's memory) and the k = 0 case that BLAS rejects.
module internal GemmContract =
    let private checkMatrix (name: string) (ldName: string) (length: int) (rows: int) (cols: int) (ld: int) =
        if ld < cols then
            invalidArg ldName $"{ldName} must be at least the stored row length {cols}, got {ld}"
        if rows > 0 && cols > 0 then
            let needed = int64 (rows - 1) * int64 ld + int64 cols
            if int64 length < needed then
                invalidArg name $"{name} holds {length} elements; a {rows}x{cols} matrix with row stride {ld} needs {needed}"

    /// Throws ArgumentException unless m, n, k, the strides and the span lengths describe valid matrices.
    let check transA transB m n k aLength lda bLength ldb cLength ldc =
        if m < 0 then invalidArg "m" $"m must be non-negative, got {m}"
        if n < 0 then invalidArg "n" $"n must be non-negative, got {n}"
        if k < 0 then invalidArg "k" $"k must be non-negative, got {k}"
        // A is stored k x m when transposed, B n x k.
        checkMatrix "a" "lda" aLength (if transA then k else m) (if transA then m else k) lda
        checkMatrix "b" "ldb" bLength (if transB then n else k) (if transB then k else n) ldb
        checkMatrix "c" "ldc" cLength m n ldc

    /// C = 0 (m x n, row stride ldc): the empty sum that a k = 0 product is.
    let clearRows (c: Span<'T>) m n ldc =
        // With n = 0, C may be an empty span: there is no row to slice.
        if n > 0 then
            for i in 0 .. m - 1 do
                c.Slice(i * ldc, n).Clear()

    /// Checks the arguments, then runs `multiply` on pinned A, B and C when m, n and k are all
    /// positive (k = 0 clears C): the entry of a managed kernel.
    let inline pinned
        transA transB m n k (a: ReadOnlySpan<'T>) lda (b: ReadOnlySpan<'T>) ldb (c: Span<'T>) ldc
        ([<InlineIfLambda>] multiply: nativeptr<'T> -> nativeptr<'T> -> nativeptr<'T> -> unit) =
        check transA transB m n k a.Length lda b.Length ldb c.Length ldc
        if k = 0 then
            clearRows c m n ldc
        elif m > 0 && n > 0 then
            use pa = fixed &MemoryMarshal.GetReference a
            use pb = fixed &MemoryMarshal.GetReference b
            use pc = fixed &MemoryMarshal.GetReference c
            multiply pa pb pc

/// Per-thread packing memory, grown on demand and pinned (so the GC never moves it under a raw
/// pointer); reusing it keeps a GEMM call free of allocations after the first on each thread.
[<AbstractClass; Sealed>]
type internal GemmWorkspace<'T when 'T: unmanaged> =
    [<ThreadStatic; DefaultValue>]
    static val mutable private buffer: 'T array | null

    /// A pinned buffer of at least `length` elements, owned by the calling thread.
    static member Get(length: int) : 'T[] =
        match GemmWorkspace<'T>.buffer with
        | NonNull current when current.Length >= length -> current
        | _ ->
            let fresh = GC.AllocateUninitializedArray<'T>(length, pinned = true)
            GemmWorkspace<'T>.buffer <- fresh
            fresh

    /// At least `length` elements of this thread's buffer from a 64-byte boundary, so no packed
    /// vector load straddles two cache lines. The buffer is pinned, so the address stays valid.
    static member Aligned(length: int) : nativeptr<'T> =
        let lineElements = 64 / sizeof<'T>
        let buffer = GemmWorkspace<'T>.Get(length + lineElements)
        let start = NativePtr.ofNativeInt<'T> (Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0))
        let skew = int (NativePtr.toNativeInt start &&& 63n) / sizeof<'T>
        NativePtr.add start ((lineElements - skew) % lineElements)
