/// GEMM throughput of each provider, on one thread and on every core: the shapes the flows use (a
/// 512-row batch through hidden layers of 256, 64 and 128 units, a 2-feature input layer), the forward
/// and backward products of the two-moons peer steps, and a size sweep that places the threading threshold.
module GemmBench

open System
open Flows.Tensors.Backend.Cpu

// (m, k, n): C (m x n) = A (m x k) x B (k x n), named m x k x n as in "batch x in x out".
let private shapes32 = [ 512, 256, 256; 256, 64, 64; 512, 2, 64; 1024, 128, 128 ]
let private shapes64 = [ 512, 256, 256 ]

// A linear layer's three products for a batch b, in width i, out width o: forward x Wᵀ (nt), the input
// adjoint dY W (nn) and the weight gradient dYᵀ x (tn); named like bench peer's two-moons configurations.
let private stepShapes =
    [ for name, batch, width in [ "2x64.batch512", 512, 64; "8x256.batch4096", 4096, 256 ] do
        $"{name}.nt", (false, true, batch, width, width)
        $"{name}.nn", (false, false, batch, width, width)
        $"{name}.tn", (true, false, width, width, batch) ]

// Forward products b x 64 x 64 and b x 256 x 256 from 2^18 to 2^26 multiply-adds.
let private sweep = [ for b in [ 64; 256; 1024; 4096 ] -> b, 64 ] @ [ for b in [ 64; 128; 256; 512; 1024 ] -> b, 256 ]

let private gflops m k n seconds = 2.0 * float m * float k * float n / seconds / 1e9

// One float32 product C = op(A) op(B) with C m x n and depth k, in GFLOP/s.
let private rate (provider: IGemmProvider) (transA, transB, m, n, k) =
    let random = Random(1)
    let a = Array.init (m * k) (fun _ -> random.NextSingle() - 0.5f)
    let b = Array.init (k * n) (fun _ -> random.NextSingle() - 0.5f)
    let c = Array.zeroCreate<float32> (m * n)
    let lda, ldb = (if transA then m else k), (if transB then k else n)
    gflops m k n (Timing.measure (fun () -> provider.Sgemm(transA, transB, m, n, k, ReadOnlySpan a, lda, ReadOnlySpan b, ldb, Span c, n)))

let private benchDouble (provider: IGemmProvider) label (m, k, n) =
    let random = Random(1)
    let a = Array.init (m * k) (fun _ -> random.NextDouble() - 0.5)
    let b = Array.init (k * n) (fun _ -> random.NextDouble() - 0.5)
    let c = Array.zeroCreate<float> (m * n)
    let seconds =
        Timing.measure (fun () ->
            provider.Dgemm(false, false, m, n, k, ReadOnlySpan a, k, ReadOnlySpan b, n, Span c, n))
    Timing.report $"gemm.{label}.{m}x{k}x{n}.f64" (gflops m k n seconds) "GFLOP/s"

/// Prints GFLOP/s of the managed providers (the 512-bit one where it runs) and of OpenBLAS and MKL (when
/// they load) on one thread and on
/// Environment.ProcessorCount threads whatever the size (GemmThreading.parallelise), float32 and float64;
/// then the active provider under the default threading.
let run () =
    let cores = Environment.ProcessorCount
    let threaded (single: IGemmProvider) =
        if cores > 1 then [ GemmThreading.parallelise (lazy { Threads = cores; MinProduct = 0L }) single, $"{single.Name}.{cores}t" ] else []
    let native name (provider: IGemmProvider option) =
        match provider with
        | None ->
            Timing.comment $"{name} not loaded: its gemm lines are skipped"
            []
        | Some single -> (single, $"{name}.1t") :: threaded single
    MklGemm.version () |> Option.iter (fun v -> Timing.comment $"MKL: {v}")
    let providers =
        [ Gemm.managed, "managed" ] @ threaded Gemm.managed @ native "managed-avx512" Gemm.wide @ native "openblas" Gemm.openBlas @ native "mkl" Gemm.mkl.Value
    Timing.comment $"Gemm.active = {Gemm.active.Name}; default threading: {Gemm.threading.Value.Threads} threads from {Gemm.threading.Value.MinProduct} multiply-adds"
    for provider, label in providers do
        for m, k, n in shapes32 do
            Timing.report $"gemm.{label}.{m}x{k}x{n}" (rate provider (false, false, m, n, k)) "GFLOP/s"
        for shape in shapes64 do
            benchDouble provider label shape
        for name, shape in stepShapes do
            Timing.report $"gemm.{label}.{name}" (rate provider shape) "GFLOP/s"
        if not (label.StartsWith "managed.") then
            for b, width in sweep do
                let product = float b * float width * float width
                Timing.report $"gemm.{label}.sweep.{b}x{width}x{width}.2^{Math.Log2 product:F0}" (rate provider (false, true, b, width, width)) "GFLOP/s"
    for name, shape in stepShapes do
        Timing.report $"gemm.active.{name}" (rate Gemm.active shape) "GFLOP/s"
