namespace Flows.Tensors.Backend.Cuda

open System
open System.Runtime.InteropServices
open Flows.Tensors

/// An argument of a kernel launch, passed by value with the size of its C type.
[<RequireQualifiedAccess>]
type KernelArg =
    /// A device pointer (T*).
    | Ptr of uint64
    /// int
    | Int of int
    /// long long (i64)
    | Long of int64
    /// unsigned long long (u64)
    | ULong of uint64
    /// double
    | Double of float
    /// struct Dims { int v[MAX_RANK]; }: shapes and strides, zero-padded.
    | Dims of int[]

/// Launch geometry, kernel-argument packing and the stride arithmetic the kernels expect.
[<RequireQualifiedAccess>]
module internal Launch =

    /// MAX_RANK of common.cuh: the most dimensions a strided kernel takes.
    [<Literal>]
    let MaxRank = 8

    /// Threads per block of the element-wise (grid-stride) kernels.
    [<Literal>]
    let Threads = 256

    /// Blocks cap: the grid-stride loops cover the rest, and more blocks than this only add scheduling.
    [<Literal>]
    let MaxBlocks = 65536

    /// Blocks for n elements at `Threads` per block (at least one, at most `MaxBlocks`).
    let blocks (n: int64) = int (max 1L (min (int64 MaxBlocks) ((n + int64 Threads - 1L) / int64 Threads)))

    /// Threads of a block-per-output reduction over n elements: a power of two from 32 to 256
    /// (the shared-memory tree halves it).
    let reduceThreads (n: int) =
        let mutable t = 32
        while t < 256 && t < n do
            t <- t * 2
        t

    /// Pads shape or stride values to MAX_RANK, or fails naming the rank.
    let dims (op: string) (values: int[]) : KernelArg =
        if values.Length > MaxRank then
            invalidArg op $"{op}: the CUDA backend handles up to {MaxRank} dimensions, got {values.Length}"
        let padded = Array.zeroCreate MaxRank
        Array.blit values 0 padded 0 values.Length
        KernelArg.Dims padded

    /// Strides that read `source` (broadcast to `target`) as `target`: 0 along stretched or added dims.
    let broadcastStrides (source: int[]) (target: int[]) = Shape.broadcastStrides source target

    /// Source strides of a permutation: result dimension i walks source dimension dims[i].
    let permuteStrides (shape: int[]) (dims: int[]) =
        let s = Shape.strides shape
        dims |> Array.map (fun d -> s[d])

    /// Start offset and strides that read `shape` reversed along `flipped`.
    let flipStrides (shape: int[]) (flipped: int[]) =
        let s = Shape.strides shape
        let strides = s |> Array.mapi (fun i st -> if Array.contains i flipped then -st else st)
        let offset = flipped |> Array.sumBy (fun d -> (shape[d] - 1) * s[d])
        offset, strides

    /// Sizes before, along and after `dim`: the [outer, n, inner] view of reductions and indexing.
    let split (shape: int[]) (dim: int) =
        Shape.numel shape[.. dim - 1], shape[dim], Shape.numel shape[dim + 1 ..]

    let private size (arg: KernelArg) =
        match arg with
        | KernelArg.Int _ -> 4
        | KernelArg.Dims _ -> 4 * MaxRank
        | KernelArg.Ptr _ | KernelArg.Long _ | KernelArg.ULong _ | KernelArg.Double _ -> 8

    /// Byte offsets of each argument in one 8-byte-aligned block, and the block's size.
    let layout (args: KernelArg list) : int list * int =
        let offsets, total =
            args |> List.mapFold (fun at a -> at, at + ((size a + 7) / 8) * 8) 0
        offsets, total

    /// Calls `launch` with the `void**` array cuLaunchKernel expects (a pointer to each argument value).
    let withArguments (args: KernelArg list) (launch: nativeint -> unit) =
        let offsets, total = layout args
        let values = Marshal.AllocHGlobal(max total 8)
        let pointers = Marshal.AllocHGlobal(IntPtr.Size * max args.Length 1)
        try
            List.iteri2
                (fun i (a: KernelArg) at ->
                    let p = values + nativeint at
                    match a with
                    | KernelArg.Ptr v | KernelArg.ULong v -> Marshal.WriteInt64(p, int64 v)
                    | KernelArg.Int v -> Marshal.WriteInt32(p, v)
                    | KernelArg.Long v -> Marshal.WriteInt64(p, v)
                    | KernelArg.Double v -> Marshal.WriteInt64(p, BitConverter.DoubleToInt64Bits v)
                    | KernelArg.Dims v -> v |> Array.iteri (fun k x -> Marshal.WriteInt32(p, 4 * k, x))
                    Marshal.WriteIntPtr(pointers, i * IntPtr.Size, p))
                args offsets
            launch pointers
        finally
            Marshal.FreeHGlobal pointers
            Marshal.FreeHGlobal values
