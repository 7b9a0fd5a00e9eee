/// The CUDA emulator of this folder (fake libcuda, NVRTC and cuBLAS built with g++; see README.md),
/// put in front of any real CUDA for this test process, so that every CudaTensor path runs on a
/// machine without a GPU. Tests that need it skip with the reason when it could not be built.
namespace Flows.CudaEmulator

open System
open System.IO
open System.Runtime.InteropServices
open Xunit
open Flows.Tensors

/// The C library's setenv: .NET's SetEnvironmentVariable does not reach what native code reads with getenv.
module private Native =
    [<DllImport("libc", SetLastError = true)>]
    extern int setenv(string name, string value, int overwrite)

/// The emulated device, opened once for the process.
[<RequireQualifiedAccess>]
module Emulator =

    /// Where the build put the emulator's libraries.
    let folder = Path.Combine(AppContext.BaseDirectory, "cuda-emulator")

    /// Device memory of the emulator, small so that the out-of-memory path is reachable.
    [<Literal>]
    let MemoryMiB = 256

    /// Why the emulated cuda:0 cannot be used, or None once it is open.
    let missing : Lazy<string option> =
        lazy
            (if not (File.Exists(Path.Combine(folder, "libcuda.so.1"))) then
                 Some $"the CUDA emulator was not built into {folder} (the build runs make with g++)"
             else
                 // read by NativeLibraries, the emulator's driver and the kernel cache when cuda:0 opens
                 Environment.SetEnvironmentVariable("FLOWS_CUDA_PATH", folder)
                 Native.setenv("FLOWS_EMU_MEMORY_MB", string MemoryMiB, 1) |> ignore
                 Environment.SetEnvironmentVariable("FLOWS_CUBIN_CACHE", Path.Combine(folder, "cache"))
                 try
                     Tensor.zeros([| 1 |], device = Device.Cuda 0).toArray32() |> ignore
                     None
                 with e ->
                     Some $"the emulated cuda:0 did not open: {e.Message}")

/// A fact that runs on the emulated device: skipped with the reason when the emulator is missing.
type EmulatorFactAttribute() as this =
    inherit FactAttribute()
    do
        match Emulator.missing.Value with
        | Some reason -> this.Skip <- $"NOT RUN: {reason}"
        | None -> ()
