namespace Flows.Tensors.Backend.Cuda

open System
open System.Collections.Concurrent
open System.Collections.Generic

/// Where an unreachable buffer goes: a queue, so that finalizers never call CUDA.
type internal IBufferReturn =
    abstract Enqueue: pointer: uint64 * bytes: int64 -> unit

/// Device memory held by one or more tensors (reshapes share it). Never freed by a finalizer: when
/// the GC finds it unreachable, the finalizer only queues the block for its pool, and the next
/// allocation on the device reuses it. Its size is reported to the GC as memory pressure, so that
/// collections keep pace with GPU allocations.
[<Sealed; AllowNullLiteral>]
type internal DeviceBuffer(pointer: uint64, bytes: int64, owner: IBufferReturn) =
    do GC.AddMemoryPressure bytes
    let mutable released = 0
    /// The device address; a released buffer refuses to give it, so its block, reused by then, is never touched.
    member _.Pointer =
        if released <> 0 then
            raise (ObjectDisposedException("tensor", "this tensor's device memory was released (the model that held it was disposed)"))
        pointer
    /// The block's size (the size class, at least the request).
    member _.Bytes = bytes
    /// Whether `Release` has run.
    member _.IsReleased = released <> 0

    /// Returns the block to its pool now rather than at finalisation (once; later calls do nothing).
    member this.Release() =
        if Threading.Interlocked.Exchange(&released, 1) = 0 then
            GC.SuppressFinalize this
            GC.RemoveMemoryPressure bytes
            owner.Enqueue(pointer, bytes)

    override _.Finalize() =
        GC.RemoveMemoryPressure bytes
        owner.Enqueue(pointer, bytes)

    interface Flows.Tensors.Backend.IReleasableStorage with
        member b.IsReleased = b.IsReleased
        member _.Bytes = bytes
        member b.Release() = b.Release()

/// Outcome of asking the driver for memory.
[<RequireQualifiedAccess>]
type internal Allocation =
    | Allocated of pointer: uint64
    | OutOfMemory
    | Failed of message: string

/// A caching allocator for one device in the manner of PyTorch's: blocks are rounded to size classes
/// and kept for reuse instead of freed; the driver frees only when an allocation fails (after a
/// collection has returned what the program no longer reaches). Every kernel runs on
/// the device's one stream, so a block reused by a later launch is ordered after its earlier uses.
[<Sealed>]
type internal DevicePool(device: string, allocate: int64 -> Allocation, free: uint64 -> unit) =
    let pending = ConcurrentQueue<struct (uint64 * int64)>()
    let cached = Dictionary<int64, Stack<uint64>>()
    let gate = obj ()
    let mutable inUse = 0L
    let mutable cachedBytes = 0L
    let mutable rented = 0L

    // moves finalised blocks to the reuse lists (on an allocating thread, never a finalizer)
    let drain () =
        let mutable item = Unchecked.defaultof<struct (uint64 * int64)>
        while pending.TryDequeue(&item) do
            let struct (p, bytes) = item
            inUse <- inUse - bytes
            cachedBytes <- cachedBytes + bytes
            match cached.TryGetValue bytes with
            | true, stack -> stack.Push p
            | _ -> cached[bytes] <- Stack([ p ])

    let reuse (bytes: int64) =
        match cached.TryGetValue bytes with
        | true, stack when stack.Count > 0 ->
            cachedBytes <- cachedBytes - bytes
            Some(stack.Pop())
        | _ -> None

    let releaseCached () =
        for stack in cached.Values do
            for p in stack do
                free p
        cached.Clear()
        cachedBytes <- 0L

    /// Requests up to 1 MiB round up to 512 bytes, larger ones to 2 MiB: few distinct sizes to reuse.
    static member SizeClass(bytes: int64) =
        let small, large = 512L, 2L * 1024L * 1024L
        let unit = if bytes <= 1024L * 1024L then small else large
        (max bytes 1L + unit - 1L) / unit * unit

    /// Bytes held by live buffers.
    member _.BytesInUse = lock gate (fun () -> drain (); inUse)

    /// Bytes kept for reuse.
    member _.BytesCached = lock gate (fun () -> drain (); cachedBytes)

    /// Bytes handed out since the pool was made, reused blocks included.
    member _.BytesRented = lock gate (fun () -> rented)

    /// A buffer of at least `bytes` for `what` (an op and shape, for the out-of-memory message).
    member pool.Rent(bytes: int64, what: string) : DeviceBuffer =
        let size = DevicePool.SizeClass bytes
        let pointer =
            lock gate (fun () ->
                drain ()
                match reuse size with
                | Some p -> p
                | None ->
                    match allocate size with
                    | Allocation.Allocated p -> p
                    | Allocation.Failed message -> invalidOp message
                    | Allocation.OutOfMemory ->
                        // what the program dropped may still await finalisation: collect, reuse, release, retry
                        GC.Collect()
                        GC.WaitForPendingFinalizers()
                        drain ()
                        match reuse size with
                        | Some p -> p
                        | None ->
                            releaseCached ()
                            match allocate size with
                            | Allocation.Allocated p -> p
                            | Allocation.Failed message -> invalidOp message
                            | Allocation.OutOfMemory ->
                                raise (
                                    OutOfMemoryException(
                                        $"{device} is out of memory: {what} asked for {bytes} bytes ({size} with rounding) while tensors hold {inUse} bytes; free tensors you no longer need or use a smaller batch"
                                    )
                                ))
        lock gate (fun () ->
            inUse <- inUse + size
            rented <- rented + size)
        DeviceBuffer(pointer, size, pool)

    interface IBufferReturn with
        member _.Enqueue(pointer, bytes) = pending.Enqueue(struct (pointer, bytes))
