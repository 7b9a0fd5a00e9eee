namespace Flows.Tensors.Backend

open System.Collections.Concurrent
open Flows.Tensors
open Flows.Tensors.Backend.Cpu
open Flows.Tensors.Backend.Cuda

/// Which backend serves which device, and copies between devices. Compiled after both backends,
/// which know nothing of each other.
[<RequireQualifiedAccess>]
type Registry private () =
    static let cuda = ConcurrentDictionary<int, IBackend>()

    /// The backend for a device; a CUDA device is opened on first use, or the error says which
    /// library is missing.
    static member Get(device: Device) : IBackend =
        match device with
        | Device.Cpu -> CpuTensor.CpuBackend
        | Device.Cuda i -> cuda.GetOrAdd(i, CudaBackend.Open)

    /// A copy of `t` on `device` (`t` itself when it is there already), through host memory.
    static member Move(t: RawTensor, device: Device) : RawTensor =
        if t.Device = device then t else (Registry.Get device).OfArray(t.ToArray(), t.Shape)
