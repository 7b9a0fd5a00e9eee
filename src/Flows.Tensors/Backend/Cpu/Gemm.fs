namespace Flows.Tensors.Backend.Cpu

open System

/// The GEMM providers and the process-wide choice among them. The choice is made once, from the
/// environment, so that results and timings within a process never depend on call order.
[<RequireQualifiedAccess>]
module Gemm =
    /// The managed packed-SIMD provider: always present, the fallback and the reference for OpenBLAS.
    let managed: IGemmProvider = ManagedGemm.provider

    /// The managed 512-bit provider, where the processor has AVX-512 (WideGemm.isSupported).
    let wide: IGemmProvider option = WideGemm.provider

    /// The threading of `active`: FLOWS_GEMM_THREADS=N, or every core the process may run on, for big
    /// products (GemmThreading). A bad FLOWS_GEMM_THREADS is reported at the first product.
    let threading: Lazy<GemmThreading> = lazy (GemmThreading.fromEnvironment ())

    /// The system OpenBLAS provider (single-threaded), or None when it cannot be loaded. Loading is
    /// attempted on first use of this module, never at process start.
    let openBlas: IGemmProvider option = OpenBlasGemm.tryLoad ()

    /// Intel MKL (libmkl_rt.so, single-threaded), or None when it cannot be loaded; used when FLOWS_GEMM=mkl.
    let mkl: Lazy<IGemmProvider option> = lazy (MklGemm.tryLoad ())

    // FLOWS_GEMM pins the provider so a bench or a bug report can be reproduced on either one.
    let private choose () =
        match Environment.GetEnvironmentVariable "FLOWS_GEMM" |> Option.ofObj |> Option.map _.Trim().ToLowerInvariant() with
        | None
        | Some "" -> wide |> Option.orElse openBlas |> Option.defaultValue managed
        | Some "managed" -> managed
        | Some "avx512" ->
            match wide with
            | Some provider -> provider
            | None ->
                invalidOp
                    "FLOWS_GEMM=avx512, but this processor (or the runtime's DOTNET_PreferredVectorBitWidth) gives no accelerated 512-bit vectors; unset FLOWS_GEMM"
        | Some "openblas" ->
            match openBlas with
            | Some provider -> provider
            | None ->
                invalidOp
                    "FLOWS_GEMM=openblas, but no OpenBLAS library could be loaded (tried libopenblas.so.0, libopenblas.so and libblas.so.3); install OpenBLAS (Debian: libopenblas0) or unset FLOWS_GEMM"
        | Some "mkl" ->
            match mkl.Value with
            | Some provider -> provider
            | None ->
                invalidOp
                    "FLOWS_GEMM=mkl, but libmkl_rt.so could not be loaded; install MKL (Debian non-free: libmkl-rt) or unset FLOWS_GEMM"
        | Some other -> invalidOp $"FLOWS_GEMM must be 'avx512', 'managed', 'openblas' or 'mkl' (or unset), got '{other}'"

    let private chosen = lazy (GemmThreading.parallelise threading (choose ()))

    /// The provider the CPU backend uses, threaded as `threading` says: FLOWS_GEMM=avx512, =managed,
    /// =openblas or =mkl forces one. Unset, it prefers the 512-bit managed kernel where the processor has
    /// AVX-512 (as fast as OpenBLAS's AVX-512 kernels and not subject to an OPENBLAS_CORETYPE pin to older
    /// ones; bench gemm), then OpenBLAS when it loads. A bad FLOWS_GEMM is reported at the first use, not at module load.
    let active: IGemmProvider =
        { new IGemmProvider with
            member _.Name = chosen.Value.Name
            member _.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                chosen.Value.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
            member _.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =
                chosen.Value.Dgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) }
