/// Per-op cost of the tensor layer on a [512; 64] float32 activation, the size of the example
/// MLPs: what one op costs above its kernel (the raw GEMM is printed for comparison).
module OpsBench

open System
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

/// Prints microseconds per call of each op.
let run () =
    let gen = Generator 3UL
    let x = gen.normal([| 512; 64 |])
    let w = gen.normal([| 64; 64 |])
    let b = gen.normal([| 64 |])
    let xa, wa = x.toArray32(), w.toArray32()
    let x2 = gen.normal([| 512; 2 |])
    let w1 = gen.normal([| 64; 2 |], 0.0, 0.3)
    let h1 = Tensor.dense(x2, w1, b, Activation.Identity)
    let c = Array.zeroCreate<float32> (512 * 64)
    let ops: (string * (unit -> unit)) list =
        [ "raw_sgemm", (fun () -> Gemm.active.Sgemm(false, true, 512, 64, 64, ReadOnlySpan xa, 64, ReadOnlySpan wa, 64, Span c, 64))
          "matmul", (fun () -> x.matmul w |> ignore)
          "dense_tanh", (fun () -> Tensor.dense(x, w, b, Activation.Tanh) |> ignore)
          "add", (fun () -> (x + x) |> ignore)
          "add_bias", (fun () -> (x + b) |> ignore)
          "tanh", (fun () -> x.tanh() |> ignore)
          "relu", (fun () -> x.relu() |> ignore)
          "sum0", (fun () -> x.sum(0) |> ignore)
          "dense_tanh_2in", (fun () -> Tensor.dense(x2, w1, b, Activation.Tanh) |> ignore)
          "tanh_2in_out", (fun () -> h1.tanh() |> ignore)
          "grad_dense_tanh", (fun () -> Ad.gradN (fun ps -> Tensor.dense(x, ps[0], ps[1], Activation.Tanh).sum()) [| w; b |] |> ignore) ]
    for name, op in ops do
        Timing.report $"ops.{name}.512x64" (Timing.measure op * 1e6) "us"
    // the products of a [1, 64, 64, 2] conditioner at batch 512, forward and backward
    let shapes =
        [ "fwd1", 512, 64, 1, false, true; "fwd2", 512, 64, 64, false, true; "fwd3", 512, 2, 64, false, true
          "dx3", 512, 64, 2, false, false; "dw3", 2, 64, 512, true, false; "dx2", 512, 64, 64, false, false
          "dw2", 64, 64, 512, true, false; "dx1", 512, 1, 64, false, false; "dw1", 64, 1, 512, true, false ]
    for name, m, n, k, ta, tb in shapes do
        let a = Array.create (m * k) 0.5f
        let bm = Array.create (k * n) 0.25f
        let out = Array.zeroCreate<float32> (m * n)
        let lda = if ta then m else k
        let ldb = if tb then k else n
        let time = Timing.measure (fun () -> Gemm.active.Sgemm(ta, tb, m, n, k, ReadOnlySpan a, lda, ReadOnlySpan bm, ldb, Span out, n))
        Timing.report $"ops.gemm_{name}.{m}x{k}x{n}" (time * 1e6) "us"
