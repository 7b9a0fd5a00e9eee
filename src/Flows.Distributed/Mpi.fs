namespace Flows.Distributed

open System
open Microsoft.FSharp.NativeInterop
open Flows.Tensors
open Flows.Training

#nowarn "9" // pinned arrays handed to MPI

/// MPI's world communicator: every process of one `mpirun -np N` job. Start it once per process
/// with `Mpi.start`; sums and broadcasts are collective, so every rank must make the same calls in
/// the same order.
[<Sealed>]
type Mpi private (api: NativeMpi.Api, rank: int, size: int, cudaAware: CudaAware.Verdict) =

    // MPI counts are ints: large buffers go in buckets of at most this many elements
    static let bucket = 1 <<< 24

    static let mutable world: Mpi option = None

    member _.Rank = rank
    member _.Size = size
    /// The library in use (its file name).
    member _.Library = api.Library
    /// Whether a GPU model's gradients and parameters go to MPI as device pointers (a CUDA-aware
    /// OpenMPI, or FLOWS_MPI_CUDA_AWARE=1); otherwise they are staged through host memory.
    member _.CudaAware = cudaAware.Enabled
    /// Why `CudaAware` is what it is, in words (for logs).
    member _.CudaAwareReason = cudaAware.Reason
    /// The environment variable that forces `CudaAware`: 1 on, 0 off, unset or auto to ask the library.
    static member CudaAwareVariable = CudaAware.Variable

    // `call` on consecutive buckets of a pinned buffer: (address of the bucket, its element count) → MPI code
    static member private InBuckets(name: string, start: nativeint, count: int, elementBytes: int, call: nativeint -> int -> int) =
        let mutable offset = 0
        while offset < count do
            let n = min bucket (count - offset)
            NativeMpi.check name (call (start + nativeint (int64 offset * int64 elementBytes)) n)
            offset <- offset + n

    member private _.SumAt(start: nativeint, count: int, datatype: nativeint, elementBytes: int) =
        Mpi.InBuckets("MPI_Allreduce", start, count, elementBytes, fun at n -> api.Allreduce.Invoke(NativeMpi.inPlace, at, n, datatype, api.Sum, api.World))

    member private _.BroadcastAt(start: nativeint, count: int, datatype: nativeint, elementBytes: int) =
        Mpi.InBuckets("MPI_Bcast", start, count, elementBytes, fun at n -> api.Bcast.Invoke(at, n, datatype, 0, api.World))

    /// Replaces every element by its sum over the ranks.
    member this.Sum(values: float[]) =
        use p = fixed values
        this.SumAt(NativePtr.toNativeInt p, values.Length, api.Double, 8)

    /// Replaces every element by its sum over the ranks.
    member this.Sum(values: float32[]) =
        use p = fixed values
        this.SumAt(NativePtr.toNativeInt p, values.Length, api.Float, 4)

    /// Replaces the values by rank 0's.
    member this.Broadcast(values: float[]) =
        use p = fixed values
        this.BroadcastAt(NativePtr.toNativeInt p, values.Length, api.Double, 8)

    /// Replaces the values by rank 0's.
    member this.Broadcast(values: float32[]) =
        use p = fixed values
        this.BroadcastAt(NativePtr.toNativeInt p, values.Length, api.Float, 4)

    /// Waits until every rank gets here.
    member _.Barrier() = NativeMpi.check "MPI_Barrier" (api.Barrier.Invoke api.World)

    /// Ends every rank of the job with `code` (what a failing rank does, so that no other waits forever).
    member _.Abort(code: int) = api.Abort.Invoke(api.World, code) |> ignore

    // MPI on a device tensor's storage; the tensor stays reachable until MPI has returned
    member private _.WithDevicePointer(values: Tensor, call: nativeint -> int -> nativeint -> int -> unit) =
        if not cudaAware.Enabled then invalidOp $"device buffers were handed to MPI, which is not CUDA-aware ({cudaAware.Reason})"
        if values.dtype <> Dtype.Float64 then invalidArg (nameof values) $"expected a float64 tensor, got {values.dtype}"
        call (Memory.devicePointer values) values.numel api.Double 8
        GC.KeepAlive values
        values

    interface IDeviceCollective with
        member _.OnDevice device = cudaAware.Enabled && (match device with Device.Cuda _ -> true | Device.Cpu -> false)
        // MPI writes the result into the tensor's own device memory
        member this.Sum(values: Tensor) = this.WithDevicePointer(values, fun at n t b -> this.SumAt(at, n, t, b))
        member this.Broadcast(values: Tensor) = this.WithDevicePointer(values, fun at n t b -> this.BroadcastAt(at, n, t, b))

    interface ICollective with
        member _.Rank = rank
        member _.Size = size
        member this.SumInPlace values = this.Sum(values: float[])
        member this.Broadcast values = this.Broadcast(values: float[])

    /// Whether this process was started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE, PMIx PMIX_RANK).
    static member Launched =
        not (String.IsNullOrEmpty(Environment.GetEnvironmentVariable "OMPI_COMM_WORLD_SIZE"))
        || not (String.IsNullOrEmpty(Environment.GetEnvironmentVariable "PMIX_RANK"))

    /// Initialises MPI (once per process; later calls return the same world) with MPI_THREAD_SERIALIZED.
    static member Start() : Mpi =
        lock typeof<Mpi> (fun () ->
            match world with
            | Some w -> w
            | None ->
                let requested = CudaAware.requested ()
                let api = NativeMpi.api.Force()
                let mutable initialised = 0
                NativeMpi.check "MPI_Initialized" (api.Initialized.Invoke(&initialised))
                if initialised = 0 then
                    let mutable provided = 0
                    NativeMpi.check "MPI_Init_thread" (api.InitThread.Invoke(0n, 0n, NativeMpi.threadSerialized, &provided))
                    if provided < NativeMpi.threadSerialized then
                        raise (InvalidOperationException $"{api.Library} provides thread level {provided}; Flows needs MPI_THREAD_SERIALIZED ({NativeMpi.threadSerialized})")
                let mutable rank = 0
                let mutable size = 0
                NativeMpi.check "MPI_Comm_rank" (api.CommRank.Invoke(api.World, &rank))
                NativeMpi.check "MPI_Comm_size" (api.CommSize.Invoke(api.World, &size))
                let w = Mpi(api, rank, size, CudaAware.decide api requested)
                world <- Some w
                w)

    /// Finalises MPI if it was started and not finalised yet (every rank must call it before exiting).
    static member Stop() =
        lock typeof<Mpi> (fun () ->
            match world with
            | Some _ ->
                let api = NativeMpi.api.Force()
                let mutable finalised = 0
                NativeMpi.check "MPI_Finalized" (api.Finalized.Invoke(&finalised))
                if finalised = 0 then NativeMpi.check "MPI_Finalize" (api.Finalize.Invoke())
                world <- None
            | None -> ())

    /// Runs `work` on this rank of the world and finalises; an exception on any rank is written to
    /// stderr with the rank and aborts the whole job with exit code 1, so that no rank waits forever
    /// in a collective and no model is written half-way.
    static member Run(work: Func<Mpi, int>) : int =
        let w = Mpi.Start()
        let code =
            try
                work.Invoke w
            with e ->
                eprintfn $"rank {w.Rank} of {w.Size} failed: {e.Message}"
                Console.Error.Flush()
                w.Abort 1
                1
        Mpi.Stop()
        code
