namespace Flows.Tensors.Backend.Cuda

open Flows.Tensors
open Flows.Tensors.Backend

/// What a kernel registered from outside Flows.Tensors needs of the CUDA backend: device pointers,
/// fresh tensors, and launches of its own CUDA C source through the kernel cache.
[<RequireQualifiedAccess>]
module CudaKernels =

    let private cuda (op: string) (t: RawTensor) =
        match t with
        | :? CudaTensor as c -> c
        | _ -> invalidArg op $"{op}: expected a tensor on a CUDA device, got one on {t.Device}"

    /// The device address of a CUDA tensor's element 0 (for kernels and CUDA-aware MPI); keep the
    /// tensor reachable while the address is in use.
    let pointer (t: RawTensor) : uint64 = (cuda "pointer" t).Pointer

    /// Waits for the work queued on the device of `t`, so that memory read through `pointer` by
    /// another library (MPI) sees the finished values.
    let synchronise (t: RawTensor) = (cuda "synchronise" t).Gpu.Synchronize()

    /// A tensor of `shape` and `dtype` on the device of `like`, for a kernel to write all of.
    let empty (like: RawTensor) (shape: int[]) (dtype: Dtype) : RawTensor = (cuda "empty" like).Fresh(shape, dtype, "kernel output")

    /// A CUDA C source with the backend's shared header in front (i64, GRID_STRIDE, FOR_FLOATS of
    /// common.cuh); `name` must be unique, as modules are cached per device under it.
    let source (name: string) (text: string) : KernelSource = KernelSources.withHeader name text

    /// Kernel-name suffix of a dtype, as FOR_FLOATS names instantiations: f32, f64, i32.
    let suffix (dtype: Dtype) = OpCodes.suffix dtype

    /// Queues kernel `kernel` of `source` over n elements (grid-stride, one thread per element)
    /// on the stream of `on`'s device; the source is compiled for the device on first use, through
    /// the on-disk cubin cache.
    let launch (on: RawTensor) (source: KernelSource) (kernel: string) (n: int64) (args: KernelArg list) =
        (cuda kernel on).Gpu.LaunchN(source, kernel, n, args)
