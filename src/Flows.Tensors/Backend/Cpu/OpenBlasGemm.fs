namespace Flows.Tensors.Backend.Cpu

// FS0009: spans are pinned and handed to native code as pointers.
#nowarn "9"

open System
open System.Runtime.InteropServices
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// The CBLAS entry points of OpenBLAS. "openblas" is not a file name: OpenBlasGemm's import resolver
/// maps it to the library it found, because Debian ships only versioned names (libopenblas.so.0).
module internal OpenBlasNative =
    [<Literal>]
    let RowMajor = 101

    [<Literal>]
    let NoTrans = 111

    [<Literal>]
    let Trans = 112

    /// Sets the size of OpenBLAS's own thread pool for the following calls.
    [<DllImport("openblas", CallingConvention = CallingConvention.Cdecl)>]
    extern void openblas_set_num_threads(int count)

    /// C = alpha op(A) op(B) + beta C in float32.
    [<DllImport("openblas", CallingConvention = CallingConvention.Cdecl)>]
    extern void cblas_sgemm(
        int order, int transA, int transB, int m, int n, int k,
        float32 alpha, float32* a, int lda, float32* b, int ldb,
        float32 beta, float32* c, int ldc)

    /// C = alpha op(A) op(B) + beta C in float64.
    [<DllImport("openblas", CallingConvention = CallingConvention.Cdecl)>]
    extern void cblas_dgemm(
        int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb,
        float beta, float* c, int ldc)

/// libc's setenv(3), called through a function pointer so that no libc file name has to be guessed.
[<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
type internal SetEnv = delegate of name: string * value: string * overwrite: int -> int

/// GEMM through a system OpenBLAS, found at run time; absent or unusable means None, never an exception.
module OpenBlasGemm =
    // OpenBLAS picks its kernels in a load-time constructor from CPUID, and releases before 0.3.22 (Debian 12
    // ships 0.3.21) do not know recent Xeons: they fall back to the SSE3 "Prescott" kernels, 4-5x slower
    // (bench gemm). The constructor honours OPENBLAS_CORETYPE, so before
    // loading we name the best kernel family the CPU provably runs, unless the user already chose one.
    // Newer releases run the same SkylakeX float32/float64 kernels on these CPUs, so naming it costs nothing
    // there. Environment.SetEnvironmentVariable only changes .NET's copy, hence libc's setenv.
    let private pinCoreType () =
        let coreType =
            if Avx512F.IsSupported && Avx512F.VL.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512CD.IsSupported then
                Some "SkylakeX"
            elif Avx2.IsSupported && Fma.IsSupported then
                Some "Haswell"
            else
                None
        match coreType with
        | Some name when OperatingSystem.IsLinux() && isNull (Environment.GetEnvironmentVariable "OPENBLAS_CORETYPE") ->
            match NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "setenv") with
            | true, address -> Marshal.GetDelegateForFunctionPointer<SetEnv>(address).Invoke("OPENBLAS_CORETYPE", name, 0) |> ignore
            | _ -> ()
        | _ -> ()

    // libblas.so.3 may be the reference BLAS or another vendor's; only OpenBLAS exports both of these.
    let private isOpenBlas (handle: nativeint) =
        [ "cblas_sgemm"; "cblas_dgemm"; "openblas_set_num_threads"; "openblas_get_config" ]
        |> List.forall (fun name -> fst (NativeLibrary.TryGetExport(handle, name)))

    let private findLibrary () : nativeint option =
        pinCoreType ()
        [ "libopenblas.so.0"; "libopenblas.so"; "libblas.so.3" ]
        |> List.tryPick (fun file ->
            match NativeLibrary.TryLoad file with
            | true, handle when isOpenBlas handle -> Some handle
            | true, handle ->
                NativeLibrary.Free handle
                None
            | _ -> None)

    let private trans flag = if flag then OpenBlasNative.Trans else OpenBlasNative.NoTrans

    let private sgemm transA transB m n k (a: ReadOnlySpan<float32>) lda (b: ReadOnlySpan<float32>) ldb (c: Span<float32>) ldc =
        GemmContract.pinned transA transB m n k a lda b ldb c ldc (fun pa pb pc ->
            OpenBlasNative.cblas_sgemm(
                OpenBlasNative.RowMajor, trans transA, trans transB, m, n, k, 1.0f, pa, lda, pb, ldb, 0.0f, pc, ldc))

    let private dgemm transA transB m n k (a: ReadOnlySpan<float>) lda (b: ReadOnlySpan<float>) ldb (c: Span<float>) ldc =
        GemmContract.pinned transA transB m n k a lda b ldb c ldc (fun pa pb pc ->
            OpenBlasNative.cblas_dgemm(
                OpenBlasNative.RowMajor, trans transA, trans transB, m, n, k, 1.0, pa, lda, pb, ldb, 0.0, pc, ldc))

    let private provider: IGemmProvider =
        { new IGemmProvider with
            member _.Name = "openblas"
            member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) = sgemm transA transB m n k a lda b ldb c ldc
            member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) = dgemm transA transB m n k a lda b ldb c ldc }

    // An assembly takes one import resolver, once: it is set here, on first use, and answers only for
    // "openblas" so that other imports keep the default probing.
    let private loaded =
        lazy
            (match findLibrary () with
             | None -> None
             | Some handle ->
                 try
                     NativeLibrary.SetDllImportResolver(
                         typeof<IGemmProvider>.Assembly,
                         DllImportResolver(fun name _ _ -> if name = "openblas" then handle else 0n))
                     // One thread: GemmThreading threads big products itself, in blocks that each
                     // call OpenBLAS on the thread that takes them; OpenBLAS's own threads lose up to
                     // 40x while the other core is busy (bench gemm, README).
                     OpenBlasNative.openblas_set_num_threads 1
                     Some provider
                 with
                 | :? InvalidOperationException
                 | :? DllNotFoundException
                 | :? EntryPointNotFoundException -> None)

    /// The single-threaded OpenBLAS provider ("openblas"), or None when no OpenBLAS library can be loaded.
    let tryLoad () : IGemmProvider option = loaded.Value
