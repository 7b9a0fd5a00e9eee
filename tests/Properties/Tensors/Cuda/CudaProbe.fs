/// What this machine offers the CUDA tests, decided once: the checks that need NVRTC or a device
/// are skipped with the reason shown by the test runner when it is missing, never silently passed.
namespace Flows.Properties.Tensors.Cuda

open System
open Xunit
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu
open Flows.Tensors.Backend.Cuda

/// Probes for NVRTC and a CUDA device.
[<RequireQualifiedAccess>]
module internal CudaProbe =

    /// NVRTC, or why it is not there.
    let nvrtc : Lazy<Result<NvrtcApi, string>> =
        lazy
            (match NativeLibraries.find NativeLibraries.tryLoad NativeLibraries.nvrtc (NativeLibraries.chosenFolders Environment.GetEnvironmentVariable) (NativeLibraries.searchFolders Environment.GetEnvironmentVariable) with
             | Ok(handle, _) -> Ok(NvrtcApi handle)
             | Error message -> Error message)

    /// Why device cuda:0 cannot be used here, or None when it can.
    let deviceMissing : Lazy<string option> =
        lazy
            (try
                (Registry.Get(Device.Cuda 0)).Full([| 1 |], Dtype.Float32, 0.0).ToArray() |> ignore
                None
             with e -> Some e.Message)

/// A fact that needs NVRTC: skipped with a message saying the kernels were not compiled, and why.
type NvrtcFactAttribute() as this =
    inherit FactAttribute()
    do
        match CudaProbe.nvrtc.Value with
        | Error reason -> this.Skip <- $"NOT CHECKED: the CUDA kernels were not compiled because NVRTC is missing. {reason}"
        | Ok _ -> ()

/// A fact that needs a CUDA device: skipped with a message saying the GPU parity suite did not run, and why.
type GpuFactAttribute() as this =
    inherit FactAttribute()
    do
        match CudaProbe.deviceMissing.Value with
        | Some reason -> this.Skip <- $"NOT RUN: no usable CUDA device, so the GPU parity suite was skipped here (tests/CudaEmulator runs it on the CPU emulator). {reason}"
        | None -> ()
