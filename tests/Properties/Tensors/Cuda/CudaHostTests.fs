/// The CUDA backend's host-side logic, checked on any machine: cache keys, library search order,
/// the error when CUDA is missing, launch geometry and strides, argument packing, the allocator.
module Flows.Properties.Tensors.Cuda.CudaHostTests

open System
open System.IO
open Xunit
open Flows.Tensors
open Flows.Tensors.Backend.Cuda

[<Fact>]
let ``The cubin cache key is stable and changes with each of source, options, architecture and NVRTC version`` () =
    let k = KernelCache.key "src" [ "--a"; "--b" ] "sm_90" "12.4"
    Assert.Equal(k, KernelCache.key "src" [ "--a"; "--b" ] "sm_90" "12.4")
    Assert.Equal(64, k.Length)
    Assert.True(k |> Seq.forall Uri.IsHexDigit)
    let others =
        [ KernelCache.key "src " [ "--a"; "--b" ] "sm_90" "12.4"
          KernelCache.key "src" [ "--a" ] "sm_90" "12.4"
          KernelCache.key "src" [ "--a"; "--b" ] "sm_80" "12.4"
          KernelCache.key "src" [ "--a"; "--b" ] "sm_90" "12.5" ]
    for other in others do Assert.NotEqual<string>(k, other)
    // fields are length-prefixed: moving a character across a boundary is a different key
    Assert.NotEqual<string>(KernelCache.key "ab" [ "c" ] "sm_90" "1", KernelCache.key "a" [ "bc" ] "sm_90" "1")

[<Fact>]
let ``Cache files are written whole through a rename and leave no temporary file`` () =
    let dir = Path.Combine(Path.GetTempPath(), "flows-cubin-" + Guid.NewGuid().ToString("N"))
    try
        let path = Path.Combine(dir, "k.cubin")
        KernelCache.writeAtomically path [| 1uy; 2uy; 3uy |]
        KernelCache.writeAtomically path [| 4uy; 5uy |]
        Assert.Equal<byte[]>([| 4uy; 5uy |], File.ReadAllBytes path)
        Assert.Equal<string[]>([| path |], Directory.GetFiles dir)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``The cache folder honours FLOWS_CUBIN_CACHE, then XDG_CACHE_HOME, then the home folder`` () =
    let env (pairs: (string * string) list) = fun name -> pairs |> List.tryFind (fst >> (=) name) |> Option.map snd |> Option.toObj
    Assert.Equal("/c", KernelCache.folder (env [ "FLOWS_CUBIN_CACHE", "/c"; "XDG_CACHE_HOME", "/x" ]))
    Assert.Equal(Path.Combine("/x", "flows", "cubin"), KernelCache.folder (env [ "XDG_CACHE_HOME", "/x" ]))
    Assert.EndsWith(Path.Combine(".cache", "flows", "cubin"), KernelCache.folder (env []))

[<Fact>]
let ``Library names are tried newest CUDA first: in the chosen folders, then each on the loader path before the folders`` () =
    Assert.Equal<string list>(
        [ "libnvrtc.so.13"; "/f/libnvrtc.so.13"; "libnvrtc.so.12"; "/f/libnvrtc.so.12"; "libnvrtc.so.11.2"; "/f/libnvrtc.so.11.2"; "libnvrtc.so"; "/f/libnvrtc.so" ],
        NativeLibraries.candidates NativeLibraries.nvrtc [] [ "/f" ])
    Assert.Equal<string list>([ "libcublas.so.13"; "libcublas.so.12"; "libcublas.so.11"; "libcublas.so" ], NativeLibraries.candidates NativeLibraries.cublas [] [])
    Assert.Equal<string list>(
        [ "/c/libcuda.so.1"; "/c/libcuda.so"; "libcuda.so.1"; "/f/libcuda.so.1"; "libcuda.so"; "/f/libcuda.so" ],
        NativeLibraries.candidates NativeLibraries.driver [ "/c" ] [ "/f" ])
    // the first that loads wins, after every earlier candidate was tried in order
    let tried = Collections.Generic.List<string>()
    let fake (path: string) = tried.Add path; (if path = "/f/libnvrtc.so.12" then Some 42n else None)
    match NativeLibraries.find fake NativeLibraries.nvrtc [] [ "/f" ] with
    | Ok(handle, path) ->
        Assert.Equal(42n, handle)
        Assert.Equal("/f/libnvrtc.so.12", path)
    | Error e -> failwith e
    Assert.Equal<string list>([ "libnvrtc.so.13"; "/f/libnvrtc.so.13"; "libnvrtc.so.12"; "/f/libnvrtc.so.12" ], List.ofSeq tried)

[<Fact>]
let ``A missing library is an error naming it, every file name tried and the folders`` () =
    match NativeLibraries.find (fun _ -> None) NativeLibraries.cublas [ "/opt/a" ] [ "/opt/b" ] with
    | Ok _ -> failwith "nothing loads, yet a library was found"
    | Error message ->
        for part in [ "cuBLAS"; "libcublas.so.13"; "libcublas.so.12"; "libcublas.so.11"; "/opt/a"; "/opt/b"; "FLOWS_CUDA_PATH" ] do
            Assert.Contains(part, message)

[<Fact>]
let ``FLOWS_CUDA_PATH names the chosen folders, searched before the loader path`` () =
    let env name = if name = "FLOWS_CUDA_PATH" then "/one:/two" else null
    Assert.Equal<string list>([ "/one"; "/two" ], NativeLibraries.chosenFolders env)
    Assert.Empty(NativeLibraries.chosenFolders (fun _ -> null))
    let folders = NativeLibraries.searchFolders env
    Assert.DoesNotContain("/one", folders)
    Assert.Contains("/usr/local/cuda/lib64", folders)

[<Fact>]
let ``Asking for Device.Cuda 0 without a CUDA driver says CUDA is not available and names libcuda`` () =
    match NativeLibraries.tryLoad "libcuda.so.1" with
    | Some _ ->
        // a machine with a driver: the device opens (or fails for a reason other than a missing driver)
        match CudaProbe.deviceMissing.Value with
        | Some reason -> Assert.DoesNotContain("could not load the CUDA driver", reason)
        | None -> Assert.Equal(Device.Cuda 0, Tensor.zeros([| 2 |], device = Device.Cuda 0).device)
    | None ->
        let e = Assert.ThrowsAny<InvalidOperationException>(fun () -> Tensor.zeros([| 2 |], device = Device.Cuda 0) |> ignore)
        Assert.Contains("CUDA is not available", e.Message)
        Assert.Contains("libcuda.so.1", e.Message)
        // the CPU is untouched by the failed attempt
        Assert.Equal<float32[]>([| 0.0f; 0.0f |], Tensor.zeros([| 2 |]).toArray32())

[<Fact>]
let ``Launch geometry covers n elements with at least one block and at most the cap`` () =
    Assert.Equal(1, Launch.blocks 0L)
    Assert.Equal(1, Launch.blocks 256L)
    Assert.Equal(2, Launch.blocks 257L)
    Assert.Equal(Launch.MaxBlocks, Launch.blocks (1L <<< 40))
    for n in [ 1; 31; 32; 33; 100; 255; 256; 257; 5000 ] do
        let t = Launch.reduceThreads n
        Assert.True(t >= 32 && t <= 256 && (t &&& (t - 1)) = 0, $"{t} threads for {n}")
        Assert.True(t >= min n 256, $"{t} threads cannot cover {n} with one pass each")
        Assert.True(t = 32 || t / 2 < n, $"{t} threads is more than twice {n}")

[<Fact>]
let ``Dims are padded to MAX_RANK and more dimensions are refused naming the op`` () =
    match Launch.dims "op" [| 3; 4 |] with
    | KernelArg.Dims v -> Assert.Equal<int[]>([| 3; 4; 0; 0; 0; 0; 0; 0 |], v)
    | other -> failwith $"expected Dims, got {other}"
    let e = Assert.Throws<ArgumentException>(fun () -> Launch.dims "permute" (Array.create 9 1) |> ignore)
    Assert.Contains("permute", e.Message)
    Assert.Contains("9", e.Message)

/// Reads `source` through an offset and strides over `box`, as strided_copy does on the device.
let private readStrided (source: float[]) (box: int[]) (offset: int) (strides: int[]) =
    let n = Shape.numel box
    Array.init n (fun i ->
        let mutable rest = i
        let mutable at = offset
        for d in box.Length - 1 .. -1 .. 0 do
            at <- at + (rest % box[d]) * strides[d]
            rest <- rest / box[d]
        source[at])

[<Fact>]
let ``Stride helpers read the same elements as the CPU's expand, permute and flip`` () =
    let x = Tensor.arange(24, Dtype.Float64).reshape [| 2; 3; 4 |]
    let data = x.toArray64()
    Assert.Equal<float[]>((x.permute [| 2; 0; 1 |]).toArray64(), readStrided data [| 4; 2; 3 |] 0 (Launch.permuteStrides [| 2; 3; 4 |] [| 2; 0; 1 |]))
    let offset, strides = Launch.flipStrides [| 2; 3; 4 |] [| 0; 2 |]
    Assert.Equal<float[]>((x.flip [| 0; 2 |]).toArray64(), readStrided data [| 2; 3; 4 |] offset strides)
    let row = Tensor.arange(4, Dtype.Float64).reshape [| 1; 4 |]
    Assert.Equal<float[]>((row.expand [| 3; 2; 4 |]).toArray64(), readStrided (row.toArray64()) [| 3; 2; 4 |] 0 (Launch.broadcastStrides [| 1; 4 |] [| 3; 2; 4 |]))

[<Fact>]
let ``Kernel arguments are laid out 8-byte aligned with Dims taking 32 bytes`` () =
    let offsets, total = Launch.layout [ KernelArg.Int 1; KernelArg.Ptr 2UL; KernelArg.Dims(Array.zeroCreate 8); KernelArg.Double 1.0; KernelArg.Int 3 ]
    Assert.Equal<int list>([ 0; 8; 16; 48; 56 ], offsets)
    Assert.Equal(64, total)
    // and each pointer in the void** array points at its value
    Launch.withArguments [ KernelArg.Int 7; KernelArg.Double 2.5; KernelArg.Long -3L ] (fun pointers ->
        let at i = Runtime.InteropServices.Marshal.ReadIntPtr(pointers, i * IntPtr.Size)
        Assert.Equal(7, Runtime.InteropServices.Marshal.ReadInt32(at 0))
        Assert.Equal(2.5, BitConverter.Int64BitsToDouble(Runtime.InteropServices.Marshal.ReadInt64(at 1)))
        Assert.Equal(-3L, Runtime.InteropServices.Marshal.ReadInt64(at 2)))

[<Fact>]
let ``The architecture is the newest NVRTC supports within the device's major version`` () =
    let nvrtc118 = [| 35; 37; 50; 52; 53; 60; 61; 62; 70; 72; 75; 80; 86; 87; 89; 90 |]
    Assert.Equal(Ok "sm_90", KernelCache.pickArchitecture nvrtc118 90)
    Assert.Equal(Ok "sm_86", KernelCache.pickArchitecture nvrtc118 86)
    Assert.Equal(Ok "sm_80", KernelCache.pickArchitecture nvrtc118 80)
    Assert.Equal(Ok "sm_87", KernelCache.pickArchitecture nvrtc118 88)
    match KernelCache.pickArchitecture nvrtc118 100 with
    | Error message -> Assert.Contains("10.0", message)
    | Ok a -> failwith $"a cubin for {a} does not run on compute capability 10.0"

[<Fact>]
let ``Size classes round small requests to 512 bytes and large ones to 2 MiB`` () =
    Assert.Equal(512L, DevicePool.SizeClass 0L)
    Assert.Equal(512L, DevicePool.SizeClass 512L)
    Assert.Equal(1024L, DevicePool.SizeClass 513L)
    Assert.Equal(1024L * 1024L, DevicePool.SizeClass(1024L * 1024L))
    Assert.Equal(2L * 1024L * 1024L, DevicePool.SizeClass(1024L * 1024L + 1L))
    Assert.Equal(4L * 1024L * 1024L, DevicePool.SizeClass(2L * 1024L * 1024L + 1L))

/// A pool over a fake device of `capacity` bytes that records frees.
let private fakePool (capacity: int64) =
    let mutable next = 0x1000UL
    let mutable used = 0L
    let sizes = Collections.Generic.Dictionary<uint64, int64>()
    let freed = Collections.Generic.List<uint64>()
    let allocate bytes =
        if used + bytes > capacity then Allocation.OutOfMemory
        else
            let p = next
            next <- next + uint64 bytes
            used <- used + bytes
            sizes[p] <- bytes
            Allocation.Allocated p
    let free p =
        used <- used - sizes[p]
        freed.Add p
    DevicePool("cuda:9", allocate, free), freed

// allocates in a separate frame so that the buffer is unreachable when it returns
[<Runtime.CompilerServices.MethodImpl(Runtime.CompilerServices.MethodImplOptions.NoInlining)>]
let private rentAndDrop (pool: DevicePool) (bytes: int64) = pool.Rent(bytes, "test").Pointer

[<Fact>]
let ``Unreachable buffers come back to the pool through the finalizer queue and are reused`` () =
    let pool, freed = fakePool (1L <<< 30)
    let first = rentAndDrop pool 4000L
    GC.Collect()
    GC.WaitForPendingFinalizers()
    Assert.Equal(0L, pool.BytesInUse)
    Assert.Equal(4096L, pool.BytesCached)
    let again = pool.Rent(3900L, "test")
    Assert.Equal(first, again.Pointer)
    Assert.Empty freed
    GC.KeepAlive again

[<Fact>]
let ``Out of device memory is an error naming the device, the request and the bytes in use`` () =
    let pool, freed = fakePool (8L * 1024L * 1024L)
    let held = pool.Rent(6L * 1024L * 1024L, "dense [1024, 1536]")
    // a dropped cached block is released before giving up
    rentAndDrop pool 1000L |> ignore
    let e = Assert.Throws<OutOfMemoryException>(fun () -> pool.Rent(4L * 1024L * 1024L, "matmul [2048, 512]") |> ignore)
    for part in [ "cuda:9"; "matmul [2048, 512]"; "4194304 bytes"; "6291456 bytes" ] do
        Assert.Contains(part, e.Message)
    Assert.Equal(1, freed.Count)
    GC.KeepAlive held

[<Fact>]
let ``An allocation that fails for want of memory succeeds once dropped tensors are collected`` () =
    let pool, _ = fakePool (4L * 1024L * 1024L)
    for _ in 1..5 do
        // each needs most of the device: only collecting the previous one lets the next fit
        rentAndDrop pool (3L * 1024L * 1024L) |> ignore
    // at most the last one is still counted (dropped, not yet collected)
    Assert.True(pool.BytesInUse <= DevicePool.SizeClass(3L * 1024L * 1024L))
