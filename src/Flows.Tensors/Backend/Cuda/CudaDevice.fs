namespace Flows.Tensors.Backend.Cuda

open System
open System.Collections.Concurrent
open System.Runtime.InteropServices
open Flows.Tensors

/// One CUDA device as Flows drives it: the primary context, one stream that orders every kernel,
/// copy and GEMM, the kernel modules compiled for its architecture, cuBLAS and the memory pool.
[<Sealed>]
type internal CudaDevice private (index: int, driver: DriverApi, nvrtc: NvrtcApi, cacheFolder: string, context: nativeint, stream: nativeint, architecture: string, modules: nativeint list) =
    let functions = ConcurrentDictionary<string, nativeint>()
    // sources registered from outside Flows.Tensors, compiled the first time one of their kernels runs
    let extra = ConcurrentDictionary<string, Lazy<nativeint>>()
    let sync = Environment.GetEnvironmentVariable "FLOWS_CUDA_SYNC" = "1"

    // the context is per-thread state: bind it on first use from each thread
    [<ThreadStatic; DefaultValue>]
    static val mutable private current: nativeint

    let enter () =
        if CudaDevice.current <> context then
            driver.Check "cuCtxSetCurrent" (driver.CtxSetCurrent.Invoke context)
            CudaDevice.current <- context

    let pool =
        DevicePool(
            $"cuda:{index}",
            (fun bytes ->
                enter ()
                let mutable p = 0UL
                match driver.MemAlloc.Invoke(&p, unativeint bytes) with
                | 0 -> Allocation.Allocated p
                | 2 -> Allocation.OutOfMemory
                | code -> Allocation.Failed $"cuMemAlloc_v2 of {bytes} bytes on cuda:{index} failed with code {code}"),
            fun p ->
                // freeing is rare (after a failed allocation): let queued kernels finish with the block first
                enter ()
                driver.CtxSynchronize.Invoke() |> ignore
                driver.MemFree.Invoke p |> ignore
        )

    let cublas =
        lazy
            (enter ()
             let api = CublasApi(NativeLibraries.load NativeLibraries.cublas)
             let mutable handle = 0n
             api.Check "cublasCreate_v2" (api.Create.Invoke(&handle))
             api.Check "cublasSetStream_v2" (api.SetStream.Invoke(handle, stream))
             api, handle)

    /// Opens device `index`: loads the driver and NVRTC, compiles (or reads from the cache) every
    /// kernel module for the device's architecture. Fails with a message naming what is missing.
    static member Open(index: int) : CudaDevice =
        let driver = DriverApi(NativeLibraries.load NativeLibraries.driver)
        driver.Check "cuInit" (driver.Init.Invoke 0u)
        let mutable count = 0
        driver.Check "cuDeviceGetCount" (driver.DeviceGetCount.Invoke(&count))
        if index < 0 || index >= count then
            invalidArg "device" $"device cuda:{index} does not exist: the driver reports {count} CUDA device(s)"
        let mutable device = 0
        driver.Check "cuDeviceGet" (driver.DeviceGet.Invoke(&device, index))
        let attribute a =
            let mutable v = 0
            driver.Check "cuDeviceGetAttribute" (driver.DeviceGetAttribute.Invoke(&v, a, device))
            v
        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
        let capability = 10 * attribute 75 + attribute 76
        let mutable context = 0n
        driver.Check "cuDevicePrimaryCtxRetain" (driver.PrimaryCtxRetain.Invoke(&context, device))
        driver.Check "cuCtxSetCurrent" (driver.CtxSetCurrent.Invoke context)
        CudaDevice.current <- context
        let mutable stream = 0n
        driver.Check "cuStreamCreate" (driver.StreamCreate.Invoke(&stream, 0u))
        let nvrtc = NvrtcApi(NativeLibraries.load NativeLibraries.nvrtc)
        let architecture =
            match KernelCache.pickArchitecture nvrtc.SupportedArchitectures capability with
            | Ok a -> a
            | Error message -> invalidOp message
        let cacheFolder = KernelCache.folder Environment.GetEnvironmentVariable
        let modules = KernelSources.all.Force() |> List.map (CudaDevice.LoadModule driver nvrtc cacheFolder architecture)
        CudaDevice(index, driver, nvrtc, cacheFolder, context, stream, architecture, modules)

    static member private LoadModule (driver: DriverApi) (nvrtc: NvrtcApi) (cacheFolder: string) (architecture: string) (source: KernelSource) =
        let cubin = KernelCache.load nvrtc cacheFolder source architecture
        let pinned = GCHandle.Alloc(cubin, GCHandleType.Pinned)
        try
            let mutable m = 0n
            driver.Check $"cuModuleLoadData ({source.Name})" (driver.ModuleLoadData.Invoke(&m, pinned.AddrOfPinnedObject()))
            m
        finally
            pinned.Free()

    /// The device as a Flows device value.
    member _.Device = Device.Cuda index
    /// The memory pool.
    member _.Pool = pool

    /// A buffer for `count` elements of `dtype`.
    member _.Alloc(count: int, dtype: Dtype, what: string) = pool.Rent(int64 count * int64 dtype.Size, what)

    member private _.Function(name: string) =
        functions.GetOrAdd(name, fun name ->
            modules
            |> List.tryPick (fun m ->
                let mutable f = 0n
                if driver.ModuleGetFunction.Invoke(&f, m, name) = 0 then Some f else None)
            |> Option.defaultWith (fun () -> invalidOp $"no CUDA kernel named {name} in Flows' modules"))

    // kernel `name` of a source from outside, its module loaded on first use
    member private _.ExtraFunction(source: KernelSource, name: string) =
        functions.GetOrAdd(source.Name + "/" + name, fun _ ->
            enter ()
            let m = extra.GetOrAdd(source.Name, fun _ -> lazy (CudaDevice.LoadModule driver nvrtc cacheFolder architecture source)).Force()
            let mutable f = 0n
            if driver.ModuleGetFunction.Invoke(&f, m, name) <> 0 then invalidOp $"no CUDA kernel named {name} in {source.Name}"
            f)

    /// Launches kernel `name` on the device's stream.
    member d.Launch(name: string, blocks: int, threads: int, sharedBytes: int, args: KernelArg list) =
        d.Run(d.Function name, name, blocks, threads, sharedBytes, args)

    /// Launches kernel `name` of `source` (compiled for this device on first use) over n elements, grid-stride.
    member d.LaunchN(source: KernelSource, name: string, n: int64, args: KernelArg list) =
        if n > 0L then d.Run(d.ExtraFunction(source, name), name, Launch.blocks n, Launch.Threads, 0, args)

    member private _.Run(f: nativeint, name: string, blocks: int, threads: int, sharedBytes: int, args: KernelArg list) =
        enter ()
        Launch.withArguments args (fun pointers ->
            driver.Check $"cuLaunchKernel ({name})"
                (driver.LaunchKernel.Invoke(f, uint32 blocks, 1u, 1u, uint32 threads, 1u, 1u, uint32 sharedBytes, stream, pointers, 0n)))
        // FLOWS_CUDA_SYNC=1: surface a kernel's fault at its own launch instead of a later call
        if sync then driver.Check $"{name} (synchronised)" (driver.StreamSynchronize.Invoke stream)

    /// Launches an element-wise kernel over n elements (grid-stride).
    member d.LaunchN(name: string, n: int64, args: KernelArg list) =
        if n > 0L then d.Launch(name, Launch.blocks n, Launch.Threads, 0, args)

    /// Copies a host array (float32[], float[] or int[]) into a buffer.
    member _.Upload(source: Array, target: DeviceBuffer) =
        enter ()
        let bytes = int64 source.Length * int64 (Buffer.ByteLength source / max source.Length 1)
        if bytes > 0L then
            let pinned = GCHandle.Alloc(source, GCHandleType.Pinned)
            try
                // from pageable memory the call returns once the source is staged: unpinning is safe
                driver.Check "cuMemcpyHtoDAsync_v2" (driver.MemcpyHtoDAsync.Invoke(target.Pointer, pinned.AddrOfPinnedObject(), unativeint bytes, stream))
            finally
                pinned.Free()

    /// Copies `target.Length` elements out of a buffer, after everything queued before.
    member _.Download(source: DeviceBuffer, target: Array) =
        enter ()
        let bytes = Buffer.ByteLength target
        if bytes > 0 then
            let pinned = GCHandle.Alloc(target, GCHandleType.Pinned)
            try
                driver.Check "cuMemcpyDtoHAsync_v2" (driver.MemcpyDtoHAsync.Invoke(pinned.AddrOfPinnedObject(), source.Pointer, unativeint bytes, stream))
                driver.Check "cuStreamSynchronize" (driver.StreamSynchronize.Invoke stream)
            finally
                pinned.Free()
        GC.KeepAlive source

    /// Copies bytes between device buffers on the stream.
    /// Waits for everything queued on the device's stream.
    member _.Synchronize() =
        enter ()
        driver.Check "cuStreamSynchronize" (driver.StreamSynchronize.Invoke stream)

    member _.CopyDevice(source: DeviceBuffer, sourceOffsetBytes: int64, target: DeviceBuffer, bytes: int64) =
        enter ()
        if bytes > 0L then
            driver.Check "cuMemcpyDtoDAsync_v2" (driver.MemcpyDtoDAsync.Invoke(target.Pointer, source.Pointer + uint64 sourceOffsetBytes, unativeint bytes, stream))

    /// Row-major C[m, n] = op(A)[m, k] · op(B)[k, n] through cuBLAS (column-major), as Cᵀ = op(B)ᵀ op(A)ᵀ:
    /// B and A swap places and keep their transpose flags; no copies.
    member _.Gemm(dtype: Dtype, transA: bool, transB: bool, m: int, n: int, k: int, a: uint64, lda: int, b: uint64, ldb: int, c: uint64) =
        enter ()
        let api, handle = cublas.Force()
        let opA = if transA then 1 else 0
        let opB = if transB then 1 else 0
        match dtype with
        | Dtype.Float32 ->
            let mutable one = 1.0f
            let mutable zero = 0.0f
            api.Check "cublasSgemm_v2" (api.Sgemm.Invoke(handle, opB, opA, n, m, k, &one, b, ldb, a, lda, &zero, c, n))
        | Dtype.Float64 ->
            let mutable one = 1.0
            let mutable zero = 0.0
            api.Check "cublasDgemm_v2" (api.Dgemm.Invoke(handle, opB, opA, n, m, k, &one, b, ldb, a, lda, &zero, c, n))
        | Dtype.Int32 -> invalidArg "matmul" "matmul: expected float operands, got int32"
