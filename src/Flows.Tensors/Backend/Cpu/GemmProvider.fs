namespace Flows.Tensors.Backend.Cpu

open System

/// A row-major GEMM: C = op(A) x op(B), overwriting C, where op transposes when asked.
/// A is m x k after op (lda = row stride of A as stored), B is k x n after op, C is m x n.
type IGemmProvider =
    /// Short name printed by benches and errors ("openblas", "managed").
    abstract Name: string
    /// float32 product.
    abstract Sgemm:
        transA: bool * transB: bool * m: int * n: int * k: int *
        a: ReadOnlySpan<float32> * lda: int * b: ReadOnlySpan<float32> * ldb: int *
        c: Span<float32> * ldc: int -> unit
    /// float64 product.
    abstract Dgemm:
        transA: bool * transB: bool * m: int * n: int * k: int *
        a: ReadOnlySpan<float> * lda: int * b: ReadOnlySpan<float> * ldb: int *
        c: Span<float> * ldc: int -> unit
