namespace Flows.Tensors

open Flows.Tensors.Backend.Cpu

/// Control of memory reuse. Reverse sweeps return the adjoint arrays they no longer need to a
/// per-thread pool, and `Ad.fgradNReusing` returns every intermediate of its call; later ops on the
/// same thread take arrays from the pool instead of fresh memory.
[<RequireQualifiedAccess>]
module Memory =

    /// Runs `f` with reuse switched off on this thread: for comparisons and for chasing a suspected
    /// aliasing bug (results must be identical either way).
    let withoutRecycling (f: unit -> 'a) : 'a =
        let before = BufferPool.Enabled
        BufferPool.Enabled <- false
        try f () finally BufferPool.Enabled <- before
