namespace Flows.Tensors.Backend.Cpu

// FS0009: the operands are pinned once and each block's spans are rebuilt from the pointers.
#nowarn "9"

open System
open System.Runtime.InteropServices
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop

/// How many threads one product runs on: `Threads` for products of at least `MinProduct` multiply-adds
/// (m n k), one thread below that, where waking a second thread costs more than it saves.
type GemmThreading = { Threads: int; MinProduct: int64 }

/// One block of a threaded product: its rows and columns of C, and its slices of A, B and C.
type internal BlockProduct<'T> = delegate of rows: int * cols: int * a: ReadOnlySpan<'T> * b: ReadOnlySpan<'T> * c: Span<'T> -> unit

/// The GEMM threading policy, and the threading itself: a big product is cut into blocks of C's rows (or
/// columns) that idle threads take one at a time, each a single-threaded product of the provider.
/// Unlike OpenBLAS's or MKL's own threads, which split the work evenly and meet after every depth block,
/// a thread the scheduler parks holds up only the block it has taken: on 2 busy cores OpenBLAS's 2
/// threads ran 512×64×64 at 0.8 GFLOP/s against 32 on one (bench gemm, README).
[<RequireQualifiedAccess>]
module GemmThreading =
    /// The smallest product (m n k multiply-adds) threaded by default: 2^22. The two-moons 2×64 batch-512
    /// products (2^21) stay on one thread, where the other core's wake-up would dominate; bench gemm.
    [<Literal>]
    let DefaultMinProduct = 4194304L

    /// One thread for every product.
    let single = { Threads = 1; MinProduct = Int64.MaxValue }

    /// The threads for one m × n × k product.
    let threadsFor (policy: GemmThreading) (m: int) (n: int) (k: int) =
        let product = int64 m * int64 n * int64 k
        if policy.Threads > 1 && product > 0L && product >= policy.MinProduct then policy.Threads else 1

    /// FLOWS_GEMM_THREADS=N (N ≥ 1; 1 never threads) or, unset, Environment.ProcessorCount, which
    /// respects the process's CPU affinity; big products are those of at least DefaultMinProduct.
    let fromEnvironment () : GemmThreading =
        let threads =
            match Environment.GetEnvironmentVariable "FLOWS_GEMM_THREADS" |> Option.ofObj |> Option.map _.Trim() with
            | None
            | Some "" -> Environment.ProcessorCount
            | Some text ->
                match Int32.TryParse text with
                | true, n when n >= 1 -> n
                | _ -> invalidOp $"FLOWS_GEMM_THREADS must be a whole number of threads, at least 1 (or unset), got '{text}'"
        { Threads = threads; MinProduct = DefaultMinProduct }

    // Runs `block rows cols offsetA offsetB offsetC` over blocks of C's longer side, about four per thread
    // so that a late thread leaves little to wait for, each a multiple of 16 rows or columns (whole
    // micro-tiles). The caller's thread takes blocks too.
    let private split threads transA transB m n lda ldb ldc (block: int -> int -> int -> int -> int -> unit) =
        let alongRows = m >= n
        let extent = if alongRows then m else n
        let size = max 16 (((extent + threads * 4 - 1) / (threads * 4) + 15) &&& ~~~15)
        let blocks = (extent + size - 1) / size
        let options = ParallelOptions(MaxDegreeOfParallelism = threads)
        Parallel.For(0, blocks, options, fun (i: int) ->
            let start = i * size
            let count = min size (extent - start)
            if alongRows then
                // Rows of op(A) are columns of A when it is transposed.
                block count n (if transA then start else start * lda) 0 (start * ldc)
            else
                block m count 0 (if transB then start * ldb else start) start)
        |> ignore

    let inline private fromPointer<'T when 'T: unmanaged> (address: nativeint) (offset: int) =
        NativePtr.toVoidPtr (NativePtr.add (NativePtr.ofNativeInt<'T> address) offset)

    // A big product in blocks: the operands are pinned once and `product` gets each block's spans,
    // rebuilt from the pointers (spans cannot be captured by the blocks' closures).
    let private threaded<'T when 'T: unmanaged and 'T: struct and 'T :> ValueType and 'T: (new: unit -> 'T)>
        threads transA transB m n k (a: ReadOnlySpan<'T>) lda (b: ReadOnlySpan<'T>) ldb (c: Span<'T>) ldc (product: BlockProduct<'T>) =
        // Checked here too: the blocks' spans are cut from raw pointers.
        GemmContract.check transA transB m n k a.Length lda b.Length ldb c.Length ldc
        use pa = fixed &MemoryMarshal.GetReference a
        use pb = fixed &MemoryMarshal.GetReference b
        use pc = fixed &MemoryMarshal.GetReference c
        let pa, pb, pc = NativePtr.toNativeInt pa, NativePtr.toNativeInt pb, NativePtr.toNativeInt pc
        let aLength, bLength, cLength = a.Length, b.Length, c.Length
        split threads transA transB m n lda ldb ldc (fun rows cols offA offB offC ->
            product.Invoke(
                rows, cols,
                ReadOnlySpan<'T>(fromPointer<'T> pa offA, aLength - offA),
                ReadOnlySpan<'T>(fromPointer<'T> pb offB, bLength - offB),
                Span<'T>(fromPointer<'T> pc offC, cLength - offC)))

    /// `single` (a single-threaded provider) run on `threading`'s threads for big products, to the
    /// same result: each block is the provider's own product of a slice of the operands.
    let parallelise (threading: Lazy<GemmThreading>) (single: IGemmProvider) : IGemmProvider =
        { new IGemmProvider with
            member _.Name = single.Name
            member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                match threadsFor threading.Value m n k with
                | 1 -> single.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
                | threads ->
                    threaded threads transA transB m n k a lda b ldb c ldc
                        (BlockProduct(fun rows cols a b c -> single.Sgemm(transA, transB, rows, cols, k, a, lda, b, ldb, c, ldc)))
            member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                match threadsFor threading.Value m n k with
                | 1 -> single.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
                | threads ->
                    threaded threads transA transB m n k a lda b ldb c ldc
                        (BlockProduct(fun rows cols a b c -> single.Dgemm(transA, transB, rows, cols, k, a, lda, b, ldb, c, ldc))) }
