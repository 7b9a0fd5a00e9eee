namespace Flows.Tensors.Backend.Cuda

open System
open System.Runtime.InteropServices

// The entry points are bound at run time from the library NativeLibraries found (DllImport would
// need one fixed file name). Device pointers are CUdeviceptr (64-bit); sizes are size_t.

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuUInt = delegate of uint32 -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuOutInt = delegate of byref<int> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuOutIntInt = delegate of byref<int> * int -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuAttribute = delegate of byref<int> * int * int -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuName = delegate of nativeint * int * int -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuOutHandleInt = delegate of byref<nativeint> * int -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuHandle = delegate of nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuNone = delegate of unit -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuOutHandleUInt = delegate of byref<nativeint> * uint32 -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuMemAlloc = delegate of byref<uint64> * unativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuMemFree = delegate of uint64 -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuMemInfo = delegate of byref<unativeint> * byref<unativeint> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuCopyHtoD = delegate of uint64 * nativeint * unativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuCopyDtoH = delegate of nativeint * uint64 * unativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuCopyDtoD = delegate of uint64 * uint64 * unativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuModuleLoad = delegate of byref<nativeint> * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuGetFunction = delegate of byref<nativeint> * nativeint * string -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuLaunch =
    delegate of nativeint * uint32 * uint32 * uint32 * uint32 * uint32 * uint32 * uint32 * nativeint * nativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CuErrorText = delegate of int * byref<nativeint> -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcVersion = delegate of byref<int> * byref<int> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcCreate = delegate of byref<nativeint> * string * string * int * nativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcCompile = delegate of nativeint * int * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcSize = delegate of nativeint * byref<unativeint> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcBytes = delegate of nativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcDestroy = delegate of byref<nativeint> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcArchs = delegate of nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal NvrtcCount = delegate of byref<int> -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CublasCreate = delegate of byref<nativeint> -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CublasSetStream = delegate of nativeint * nativeint -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CublasSgemm =
    delegate of nativeint * int * int * int * int * int * byref<float32> * uint64 * int * uint64 * int * byref<float32> * uint64 * int -> int
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal CublasDgemm =
    delegate of nativeint * int * int * int * int * int * byref<float> * uint64 * int * uint64 * int * byref<float> * uint64 * int -> int

/// Binding of exported functions.
[<RequireQualifiedAccess>]
module internal Exports =
    /// The export `name` of `library` as a delegate, or a clear error naming both.
    let bind<'D when 'D :> Delegate> (library: string) (handle: nativeint) (name: string) : 'D =
        match NativeLibrary.TryGetExport(handle, name) with
        | true, address -> Marshal.GetDelegateForFunctionPointer<'D> address
        | _ -> raise (InvalidOperationException $"{library} has no entry point {name}: the installed version is too old for Flows")

/// The CUDA driver API functions Flows uses (the _v2 names: the unsuffixed ones are the legacy 32-bit ABI).
type internal DriverApi(handle: nativeint) =
    let bind name = Exports.bind "libcuda" handle name
    member val Init: CuUInt = bind "cuInit"
    member val DriverGetVersion: CuOutInt = bind "cuDriverGetVersion"
    member val DeviceGetCount: CuOutInt = bind "cuDeviceGetCount"
    member val DeviceGet: CuOutIntInt = bind "cuDeviceGet"
    member val DeviceGetAttribute: CuAttribute = bind "cuDeviceGetAttribute"
    member val DeviceGetName: CuName = bind "cuDeviceGetName"
    member val PrimaryCtxRetain: CuOutHandleInt = bind "cuDevicePrimaryCtxRetain"
    member val CtxSetCurrent: CuHandle = bind "cuCtxSetCurrent"
    member val CtxSynchronize: CuNone = bind "cuCtxSynchronize"
    member val StreamCreate: CuOutHandleUInt = bind "cuStreamCreate"
    member val StreamSynchronize: CuHandle = bind "cuStreamSynchronize"
    member val MemAlloc: CuMemAlloc = bind "cuMemAlloc_v2"
    member val MemFree: CuMemFree = bind "cuMemFree_v2"
    member val MemGetInfo: CuMemInfo = bind "cuMemGetInfo_v2"
    member val MemcpyHtoDAsync: CuCopyHtoD = bind "cuMemcpyHtoDAsync_v2"
    member val MemcpyDtoHAsync: CuCopyDtoH = bind "cuMemcpyDtoHAsync_v2"
    member val MemcpyDtoDAsync: CuCopyDtoD = bind "cuMemcpyDtoDAsync_v2"
    member val ModuleLoadData: CuModuleLoad = bind "cuModuleLoadData"
    member val ModuleGetFunction: CuGetFunction = bind "cuModuleGetFunction"
    member val LaunchKernel: CuLaunch = bind "cuLaunchKernel"
    member val GetErrorName: CuErrorText = bind "cuGetErrorName"
    member val GetErrorString: CuErrorText = bind "cuGetErrorString"

    /// Throws with the driver's name and text for a non-zero result.
    member api.Check (call: string) (code: int) =
        if code <> 0 then
            let mutable name = 0n
            let mutable text = 0n
            api.GetErrorName.Invoke(code, &name) |> ignore
            api.GetErrorString.Invoke(code, &text) |> ignore
            let show p = if p = 0n then "unknown" else Marshal.PtrToStringUTF8 p
            raise (InvalidOperationException $"CUDA call {call} failed with {show name} ({code}): {show text}")

/// The NVRTC functions Flows uses.
type internal NvrtcApi(handle: nativeint) =
    let bind name = Exports.bind "libnvrtc" handle name
    member val Version: NvrtcVersion = bind "nvrtcVersion"
    member val CreateProgram: NvrtcCreate = bind "nvrtcCreateProgram"
    member val CompileProgram: NvrtcCompile = bind "nvrtcCompileProgram"
    member val GetProgramLogSize: NvrtcSize = bind "nvrtcGetProgramLogSize"
    member val GetProgramLog: NvrtcBytes = bind "nvrtcGetProgramLog"
    member val GetCubinSize: NvrtcSize = bind "nvrtcGetCUBINSize"
    member val GetCubin: NvrtcBytes = bind "nvrtcGetCUBIN"
    member val DestroyProgram: NvrtcDestroy = bind "nvrtcDestroyProgram"
    member val GetNumSupportedArchs: NvrtcCount = bind "nvrtcGetNumSupportedArchs"
    member val GetSupportedArchs: NvrtcArchs = bind "nvrtcGetSupportedArchs"

    /// The compute capabilities (as 10 * major + minor) this NVRTC can compile SASS for.
    member api.SupportedArchitectures : int[] =
        let mutable n = 0
        api.GetNumSupportedArchs.Invoke(&n) |> ignore
        let buffer = Marshal.AllocHGlobal(4 * max n 1)
        try
            api.GetSupportedArchs.Invoke buffer |> ignore
            Array.init n (fun i -> Marshal.ReadInt32(buffer, 4 * i))
        finally
            Marshal.FreeHGlobal buffer

    /// "major.minor" of the loaded NVRTC, part of every cache key.
    member api.VersionText =
        let mutable major = 0
        let mutable minor = 0
        api.Version.Invoke(&major, &minor) |> ignore
        $"{major}.{minor}"

/// The cuBLAS functions Flows uses.
type internal CublasApi(handle: nativeint) =
    let bind name = Exports.bind "libcublas" handle name
    member val Create: CublasCreate = bind "cublasCreate_v2"
    member val SetStream: CublasSetStream = bind "cublasSetStream_v2"
    member val Sgemm: CublasSgemm = bind "cublasSgemm_v2"
    member val Dgemm: CublasDgemm = bind "cublasDgemm_v2"

    /// Throws for a non-zero cublasStatus_t.
    member _.Check (call: string) (status: int) =
        if status <> 0 then raise (InvalidOperationException $"cuBLAS call {call} failed with status {status}")
