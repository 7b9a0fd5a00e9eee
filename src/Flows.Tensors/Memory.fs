namespace Flows.Tensors

open System.Collections.Generic
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

/// Control of memory reuse. Reverse sweeps return the adjoint arrays they no longer need to a
/// per-thread pool, and `Ad.fgradNReusing` returns every intermediate of its call; later ops on the
/// same thread take arrays from the pool instead of fresh memory.
[<RequireQualifiedAccess>]
module Memory =

    /// Runs `f` with reuse switched off on this thread: for comparisons and for chasing a suspected
    /// aliasing bug (results must be identical either way).
    let withoutRecycling (f: unit -> 'a) : 'a =
        let before = BufferPool.Enabled
        BufferPool.Enabled <- false
        try f () finally BufferPool.Enabled <- before

    /// Runs `f`, an evaluation whose intermediates nothing keeps once it returns (no gradient is
    /// taken, no cache is filled), and gives every CPU array it rented back to this thread's pool,
    /// except its result's: repeated evaluations then reuse memory instead of clearing fresh pages.
    let reusing (f: unit -> Tensor) : Tensor = BufferPool.Reusing(f, fun r -> if r.isConst then [| r.Raw.Storage |] else null)

    /// `reusing` for a computation with several results (an ODE's dynamics, one stage at a time).
    /// Scopes nest: the results join the scope around, if any. A result that a differentiation level
    /// recorded keeps every array (its graph reads them), so the scope is safe under any level.
    let reusingAll (f: unit -> Tensor[]) : Tensor[] =
        BufferPool.Reusing(f, fun rs -> if rs |> Array.forall _.isConst then rs |> Array.map _.Raw.Storage else null)

    /// Gives the CPU arrays of `dead` to this thread's pool, for the next ops to overwrite, except
    /// storage that a tensor of `live` shares. Only for tensors that nothing will read again: a
    /// training loop's gradients after the update, the optimiser moments the update replaced.
    /// Steps that recycle this way allocate nothing in the steady state. Other devices' tensors are ignored.
    let recycle (live: Tensor seq) (dead: Tensor seq) : unit =
        // a few dozen tensors a step: scans, not a hash set, which cost more than the donations
        let held = List<obj>(live |> Seq.map _.Raw.Storage)
        for t in dead do
            let storage = t.Raw.Storage
            if t.isConst && not (held.Exists(fun h -> obj.ReferenceEquals(h, storage))) then
                held.Add storage
                BufferPool.Donate storage

    /// The caching allocator's figures for a CUDA device (as torch.cuda.memory_allocated and
    /// memory_reserved); the device is opened if it was not.
    let device (device: Device) : DeviceMemoryStats =
        match Registry.Get device with
        | :? IDeviceMemory as memory -> memory.Stats()
        | _ -> invalidArg (nameof device) $"{device} has no device memory pool: the CPU's buffers are managed arrays"

    /// Returns the device memory of `tensors` to their device's pool now instead of when the GC
    /// finds them unreachable, except storage that a tensor of `keep` shares (reshapes and models
    /// built from one another share storage). A released tensor raises ObjectDisposedException
    /// when used. CPU tensors are left to the GC. Returns the bytes released.
    let release (keep: Tensor seq) (tensors: Tensor seq) : int64 =
        let kept = HashSet<obj>(keep |> Seq.map _.Raw.Storage, HashIdentity.Reference)
        let mutable bytes = 0L
        for t in tensors do
            match t.Raw.Storage with
            | :? IReleasableStorage as storage when not storage.IsReleased && kept.Add storage ->
                storage.Release()
                bytes <- bytes + storage.Bytes
            | _ -> ()
        bytes

    /// The device address of a CUDA tensor's element 0 (its elements follow row-major), once the work
    /// queued on its device has finished: for libraries that read and write device memory themselves,
    /// such as a CUDA-aware MPI. Valid while the tensor is reachable; writes through it change the tensor.
    let devicePointer (t: Tensor) : nativeint =
        if t.device = Device.Cpu then invalidArg (nameof t) $"expected a tensor on a CUDA device, got one on {t.device}"
        Cuda.CudaKernels.synchronise t.Raw
        nativeint (Cuda.CudaKernels.pointer t.Raw)
