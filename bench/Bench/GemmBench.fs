/// GEMM throughput of each provider on the shapes the flows use: a 512-row batch through hidden
/// layers of 256, 64 and 128 units, and a 2-feature input layer.
module GemmBench

open System
open Flows.Tensors.Backend.Cpu

// (m, k, n): C (m x n) = A (m x k) x B (k x n), named m x k x n as in "batch x in x out".
let private shapes32 = [ 512, 256, 256; 256, 64, 64; 512, 2, 64; 1024, 128, 128 ]
let private shapes64 = [ 512, 256, 256 ]

let private gflops m k n seconds = 2.0 * float m * float k * float n / seconds / 1e9

let private benchSingle (provider: IGemmProvider) (m, k, n) =
    let random = Random(1)
    let a = Array.init (m * k) (fun _ -> random.NextSingle() - 0.5f)
    let b = Array.init (k * n) (fun _ -> random.NextSingle() - 0.5f)
    let c = Array.zeroCreate<float32> (m * n)
    let seconds =
        Timing.measure (fun () ->
            provider.Sgemm(false, false, m, n, k, ReadOnlySpan a, k, ReadOnlySpan b, n, Span c, n))
    Timing.report $"gemm.{provider.Name}.{m}x{k}x{n}" (gflops m k n seconds) "GFLOP/s"

let private benchDouble (provider: IGemmProvider) (m, k, n) =
    let random = Random(1)
    let a = Array.init (m * k) (fun _ -> random.NextDouble() - 0.5)
    let b = Array.init (k * n) (fun _ -> random.NextDouble() - 0.5)
    let c = Array.zeroCreate<float> (m * n)
    let seconds =
        Timing.measure (fun () ->
            provider.Dgemm(false, false, m, n, k, ReadOnlySpan a, k, ReadOnlySpan b, n, Span c, n))
    Timing.report $"gemm.{provider.Name}.{m}x{k}x{n}.f64" (gflops m k n seconds) "GFLOP/s"

/// Prints GFLOP/s of the managed and (when it loads) OpenBLAS providers, float32 and float64.
let run () =
    let providers =
        match Gemm.openBlas with
        | Some openBlas -> [ Gemm.managed; openBlas ]
        | None ->
            Timing.comment "openblas not loaded: its gemm lines are skipped"
            [ Gemm.managed ]
    Timing.comment $"Gemm.active = {Gemm.active.Name}"
    for provider in providers do
        for shape in shapes32 do
            benchSingle provider shape
        for shape in shapes64 do
            benchDouble provider shape
