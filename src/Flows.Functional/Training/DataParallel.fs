namespace Flows.Training

open Flows
open Flows.Data
open Flows.Tensors

/// What data-parallel training needs of a collective: statistics of every rank's rows without
/// gathering them, one summed step, rank 0's parameters everywhere, validation over every rank.
[<RequireQualifiedAccess>]
module DataParallel =

    /// The standardisation of the rows of every rank (`Standardisation.ofRows` of the whole table),
    /// from all-reduced float64 sums in two passes (means first, then squared deviations from them,
    /// which keeps columns such as 1e8 + N(0, 1) exact). A rank may hold no rows.
    let standardisation (collective: ICollective) (x: Tensor) : Standardisation =
        Guard.that (nameof x) (x.dim = 2) $"expected rows [n; d], got shape {Shape.show x.shape}"
        let d = x.shape[1]
        let x64 = x.cast Dtype.Float64
        let n = x.shape[0]
        let sums = Array.append (if n > 0 then x64.sum(0).toArray64() else Array.zeroCreate d) [| float n |]
        collective.SumInPlace sums
        let total = sums[d]
        Guard.that (nameof x) (total > 0.0) "no rank holds any rows"
        let mean = Array.init d (fun j -> sums[j] / total)
        let squares =
            if n > 0 then (x64 - Tensor.ofArray(mean, [| 1; d |])).square().sum(0).toArray64()
            else Array.zeroCreate d
        collective.SumInPlace squares
        { Mean = mean
          Scale = squares |> Array.map (fun s -> let std = sqrt (s / total) in if std > 0.0 && System.Double.IsFinite std then std else 1.0) }

    // Tensors shaped like `like` from consecutive values of `buffer`.
    let private unflatten (like: Tensor[]) (buffer: float[]) =
        let mutable at = 0
        like |> Array.map (fun g ->
            let values = buffer[at .. at + g.numel - 1]
            at <- at + g.numel
            (Tensor.ofArray(values, g.shape).cast g.dtype).moveTo g.device)

    // Tensors shaped like `like` from consecutive elements of a float64 tensor on their device.
    let private unflattenOnDevice (like: Tensor[]) (buffer: Tensor) =
        let mutable at = 0
        like |> Array.map (fun g ->
            let part = buffer.narrow(0, at, g.numel)
            at <- at + g.numel
            part.reshape(g.shape).cast g.dtype)

    // One float64 vector of the tensors (each times `weight`) and `extra`, on their device, for a
    // collective that takes device buffers: the same values in the same order as the host buffer.
    let private flattenOnDevice (weight: float option) (tensors: Tensor[]) (extra: float[]) =
        let device = tensors[0].device
        let parts = tensors |> Array.map (fun t -> let v = t.cast(Dtype.Float64).reshape [| t.numel |] in match weight with Some w -> v * w | None -> v)
        let tail = if extra.Length > 0 then [| Tensor.ofArray(extra, [| extra.Length |]).moveTo device |] else [||]
        Tensor.cat(Array.append parts tail, 0)

    /// Every rank's loss and gradients times its `weight` (its share of the step's mean), and whether
    /// any rank was asked to stop, summed in one reduction of one float64 buffer: on the GPU when the
    /// collective takes device buffers (CUDA-aware MPI), staged through host memory otherwise.
    let sumStep (collective: ICollective) (weight: float) (loss: float) (stopAsked: bool) (grads: Tensor[]) =
        let extra = [| loss * weight; (if stopAsked then 1.0 else 0.0) |]
        match (if grads.Length > 0 then Collective.onDevice grads[0].device collective else None) with
        | Some onDevice ->
            let buffer = onDevice.Sum(flattenOnDevice (Some weight) grads extra)
            let n = buffer.shape[0] - 2
            let sums = buffer.narrow(0, n, 2).toArray64()
            sums[0], sums[1] > 0.0, unflattenOnDevice grads buffer
        | None ->
            let buffer = Array.concat [ yield! grads |> Array.map (fun g -> g.toArray64() |> Array.map (fun v -> v * weight)); extra ]
            collective.SumInPlace buffer
            let n = buffer.Length - 2
            buffer[n], buffer[n + 1] > 0.0, unflatten grads buffer[.. n - 1]

    /// The flow with rank 0's parameters on every rank (broadcast where they live when the collective
    /// takes device buffers).
    let broadcastParameters (collective: ICollective) (flow: Flow) =
        let p = Flow.parameters flow
        let values =
            match (if p.Values.Length > 0 then Collective.onDevice p.Values[0].device collective else None) with
            | Some onDevice ->
                unflattenOnDevice p.Values (onDevice.Broadcast(flattenOnDevice None p.Values [||]))
            | None ->
                let buffer = p.Values |> Array.collect _.toArray64()
                collective.Broadcast buffer
                unflatten p.Values buffer
        Flow.withParameters (p.WithValues values) flow

    /// The mean NLL of held-out rows ([x | c] for a conditional flow); under several ranks, of every
    /// rank's rows (a rank may hold none).
    let validationNll (collective: ICollective) (contextDim: int) (flow: Flow) (rows: Tensor) =
        let x, ctx = Batches.splitContext contextDim Context.none rows
        if collective.Size = 1 then -((Flow.logProb ctx x flow).mean().toScalar())
        else
            let sums = [| (if rows.shape[0] > 0 then -((Flow.logProb ctx x flow).sum().toScalar()) else 0.0); float rows.shape[0] |]
            collective.SumInPlace sums
            sums[0] / sums[1]
