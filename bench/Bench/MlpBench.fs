/// The overhead figure of the tensor layer: a 2→64→64→2 tanh MLP, forward and backward at batch
/// 512, against the same GEMM calls made directly through the active provider.
module MlpBench

open System
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

let private batch, sizes = 512, [| 2; 64; 64; 2 |]

let private mlp (weights: Tensor[]) (x: Tensor) =
    let layers = weights.Length / 2
    let mutable h = x
    for i in 0 .. layers - 1 do
        let activation = if i < layers - 1 then Activation.Tanh else Activation.Identity
        h <- Tensor.dense(h, weights[2 * i], weights[2 * i + 1], activation)
    h

/// The eight products of one forward and backward pass: three forward, three weight gradients,
/// two input gradients (the data needs none).
let private gemmOnly (provider: IGemmProvider) =
    // ordinary values, like the layer's own data
    let random = Random 11
    let buffers (m: int) (n: int) = Array.init (m * n) (fun _ -> float32 (random.NextDouble() - 0.5))
    let acts = sizes |> Array.map (fun d -> buffers batch d)
    let weights = Array.init 3 (fun i -> buffers sizes[i + 1] sizes[i])
    let grads = Array.init 3 (fun i -> buffers sizes[i + 1] sizes[i])
    let adjoints = sizes |> Array.map (fun d -> buffers batch d)
    fun () ->
        for i in 0 .. 2 do
            // h_{i+1} = h_i · W_iᵀ
            provider.Sgemm(false, true, batch, sizes[i + 1], sizes[i], ReadOnlySpan acts[i], sizes[i], ReadOnlySpan weights[i], sizes[i], Span acts[i + 1], sizes[i + 1])
        for i in 2 .. -1 .. 0 do
            // dW_i = adj_{i+1}ᵀ · h_i ; adj_i = adj_{i+1} · W_i
            provider.Sgemm(true, false, sizes[i + 1], sizes[i], batch, ReadOnlySpan adjoints[i + 1], sizes[i + 1], ReadOnlySpan acts[i], sizes[i], Span grads[i], sizes[i])
            if i > 0 then
                provider.Sgemm(false, false, batch, sizes[i], sizes[i + 1], ReadOnlySpan adjoints[i + 1], sizes[i + 1], ReadOnlySpan weights[i], sizes[i], Span adjoints[i], sizes[i])

/// Prints the MLP time, the GEMM-only time and their ratio for the active provider.
let run () =
    let gen = Generator 5UL
    let weights =
        [| for i in 0 .. 2 do
               yield gen.normal([| sizes[i + 1]; sizes[i] |], 0.0, 0.3)
               yield gen.normal([| sizes[i + 1] |], 0.0, 0.1) |]
    let x = gen.normal([| batch; 2 |])
    // the training path (Train.fit): intermediates' memory reused from step to step
    let step () = Ad.fgradNReusing (fun w -> (mlp w x).sum()) weights |> ignore
    let full = Timing.measure step
    let plain = Timing.measure (fun () -> Ad.gradN (fun w -> (mlp w x).sum()) weights |> ignore)
    let gemm = Timing.measure (gemmOnly Gemm.active)
    let name = Gemm.active.Name
    Timing.report $"mlp.{name}.2-64-64-2.batch512.fwd_bwd" (full * 1e6) "us"
    Timing.report $"mlp.{name}.2-64-64-2.batch512.gemm_only" (gemm * 1e6) "us"
    Timing.report $"mlp.{name}.2-64-64-2.batch512.overhead_ratio" (full / gemm) "x"
    Timing.report $"mlp.{name}.2-64-64-2.batch512.fwd_bwd_without_reuse" (plain * 1e6) "us"
