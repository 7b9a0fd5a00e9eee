namespace Flows.Tensors.Backend.Cpu

// FS0009: spans are pinned and handed to native code as pointers.
#nowarn "9"

open System
open System.Runtime.InteropServices
open Microsoft.FSharp.NativeInterop

// MKL's entry points, bound from libmkl_rt.so at run time: the assembly's one import resolver already
// answers for OpenBLAS. The C service functions are the mixed-case ones (MKL_Set_Num_Threads_Local);
// the lower-case names are the Fortran interface and take pointers.

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal MklSgemm =
    delegate of
        order: int * transA: int * transB: int * m: int * n: int * k: int * alpha: float32 * a: nativeint * lda: int *
        b: nativeint * ldb: int * beta: float32 * c: nativeint * ldc: int -> unit

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal MklDgemm =
    delegate of
        order: int * transA: int * transB: int * m: int * n: int * k: int * alpha: float * a: nativeint * lda: int *
        b: nativeint * ldb: int * beta: float * c: nativeint * ldc: int -> unit

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal MklIntToInt = delegate of int -> int

[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal MklVersion = delegate of buffer: nativeint * length: int -> unit

/// The MKL functions this provider calls.
type internal MklApi =
    { Sgemm: MklSgemm
      Dgemm: MklDgemm
      Version: string }

/// GEMM through Intel MKL's single dynamic library (libmkl_rt.so; Debian non-free: libmkl-rt), found at
/// run time; absent or unusable means None, never an exception.
module MklGemm =
    // MKL_THREADING_SEQUENTIAL: GemmThreading threads big products in blocks, each one MKL call on the
    // thread that takes it, so no OpenMP runtime is loaded. MKL's own OpenMP threads (GNU layer) lost up
    // to 40x while the other core was busy, as OpenBLAS's did (bench gemm, README).
    [<Literal>]
    let private ThreadingSequential = 1

    let private bind<'D when 'D :> Delegate> (handle: nativeint) (name: string) : 'D option =
        match NativeLibrary.TryGetExport(handle, name) with
        | true, address -> Some(Marshal.GetDelegateForFunctionPointer<'D> address)
        | _ -> None

    let private versionOf (version: MklVersion) =
        let buffer = Marshal.AllocHGlobal 256
        try
            version.Invoke(buffer, 255)
            Marshal.WriteByte(buffer, 255, 0uy)
            (Marshal.PtrToStringAnsi buffer |> Option.ofObj |> Option.defaultValue "").Trim()
        finally
            Marshal.FreeHGlobal buffer

    let private open' () : MklApi option =
        [ "libmkl_rt.so"; "libmkl_rt.so.2"; "libmkl_rt.so.1" ]
        |> List.tryPick (fun file ->
            match NativeLibrary.TryLoad file with
            | true, handle -> Some handle
            | _ -> None)
        |> Option.bind (fun handle ->
            match bind<MklSgemm> handle "cblas_sgemm", bind<MklDgemm> handle "cblas_dgemm",
                  bind<MklIntToInt> handle "MKL_Set_Threading_Layer", bind<MklVersion> handle "MKL_Get_Version_String" with
            | Some sgemm, Some dgemm, Some setLayer, Some version ->
                // The layer must be chosen before any other MKL call.
                setLayer.Invoke ThreadingSequential |> ignore
                Some { Sgemm = sgemm; Dgemm = dgemm; Version = versionOf version }
            | _ ->
                NativeLibrary.Free handle
                None)

    let private loaded =
        lazy
            (try
                open' ()
             with
             | :? DllNotFoundException
             | :? EntryPointNotFoundException
             | :? BadImageFormatException -> None)

    let private trans flag = if flag then OpenBlasNative.Trans else OpenBlasNative.NoTrans

    let private sgemm (api: MklApi) transA transB m n k (a: ReadOnlySpan<float32>) lda (b: ReadOnlySpan<float32>) ldb (c: Span<float32>) ldc =
        GemmContract.pinned transA transB m n k a lda b ldb c ldc (fun pa pb pc ->
            api.Sgemm.Invoke(
                OpenBlasNative.RowMajor, trans transA, trans transB, m, n, k, 1.0f, NativePtr.toNativeInt pa, lda,
                NativePtr.toNativeInt pb, ldb, 0.0f, NativePtr.toNativeInt pc, ldc))

    let private dgemm (api: MklApi) transA transB m n k (a: ReadOnlySpan<float>) lda (b: ReadOnlySpan<float>) ldb (c: Span<float>) ldc =
        GemmContract.pinned transA transB m n k a lda b ldb c ldc (fun pa pb pc ->
            api.Dgemm.Invoke(
                OpenBlasNative.RowMajor, trans transA, trans transB, m, n, k, 1.0, NativePtr.toNativeInt pa, lda,
                NativePtr.toNativeInt pb, ldb, 0.0, NativePtr.toNativeInt pc, ldc))

    let private provider (api: MklApi) : IGemmProvider =
        { new IGemmProvider with
            member _.Name = "mkl"
            member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) = sgemm api transA transB m n k a lda b ldb c ldc
            member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) = dgemm api transA transB m n k a lda b ldb c ldc }

    /// MKL's version string ("Intel(R) Math Kernel Library Version 2020.0.4 ..."), or None when it is absent.
    let version () : string option = loaded.Value |> Option.map _.Version

    /// The single-threaded MKL provider ("mkl"), or None when libmkl_rt.so cannot be loaded.
    let tryLoad () : IGemmProvider option = loaded.Value |> Option.map provider
