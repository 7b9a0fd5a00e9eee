namespace Flows

open Flows.Tensors

/// Composition of bijectors as a fold: the tensor is threaded through the layers and the per-row
/// log-dets add up. Layer order is the forward order (base → data).
[<RequireQualifiedAccess>]
module Compose =

    /// Applies the layers' forward maps in list order, summing log-dets.
    let forward (ctx: Context) (x: Tensor) (layers: Bijector list) =
        let step (x, total) (b: Bijector) =
            let y, logDet = Bijector.forward ctx x b
            y, total + logDet
        List.fold step (x, Bijector.zeroLogDet x) layers

    /// Undoes `forward`: the last layer first, each by its inverse.
    let inverse (ctx: Context) (y: Tensor) (layers: Bijector list) =
        let step (b: Bijector) (y, total) =
            let x, logDet = Bijector.inverse ctx y b
            x, total + logDet
        List.foldBack step layers (y, Bijector.zeroLogDet y)

    /// Lets layers with an observation hook (ActNorm's data initialisation, batch-norm running
    /// statistics) see their data-side inputs for the batch `y`, last layer first; returns the
    /// updated layers.
    let observe (ctx: Context) (y: Tensor) (layers: Bijector list) =
        let step (b: Bijector) (y: Tensor, observed: Bijector list) =
            let b =
                match b.Observe with
                | Some hook ->
                    let parameters, buffers = hook b.Params b.Buffers ctx (y.noDiff())
                    { b with Params = parameters; Buffers = buffers }
                | None -> b
            let x, _ = Bijector.inverse ctx y b
            x, b :: observed
        snd (List.foldBack step layers (y, []))

    /// One bijector that applies `layers` in order; its params (and buffers) are the layers' under
    /// "i." prefixes, and it observes data through the layers that do.
    let chain (name: string) (layers: Bijector list) : Bijector =
        let arr = Array.ofList layers
        Guard.that (nameof layers) (arr.Length > 0) "a chain needs at least one layer"
        // the maps receive params and buffers together, so each layer gets both in Params
        let scoped (p: Params) = arr |> Array.mapi (fun i b -> { b with Params = p.Scope(string i); Buffers = Params.empty })
        let observeLayers (p: Params) (buffers: Params) (ctx: Context) (y: Tensor) =
            let current = arr |> Array.mapi (fun i b -> { b with Params = p.Scope(string i); Buffers = buffers.Scope(string i) })
            let observed = observe ctx y (List.ofArray current) |> Array.ofList
            Params.concat (observed |> Array.mapi (fun i b -> b.Params.Prefixed(string i))),
            Params.concat (observed |> Array.mapi (fun i b -> b.Buffers.Prefixed(string i)))
        { Name = name
          Settings = Settings.ofList [ "layers", Setting.Int arr.Length ]
          Event = arr[0].Event
          Params = Params.concat (arr |> Array.mapi (fun i b -> b.Params.Prefixed(string i)))
          Buffers = Params.concat (arr |> Array.mapi (fun i b -> b.Buffers.Prefixed(string i)))
          Forward = fun p ctx x -> forward ctx x (List.ofArray (scoped p))
          Inverse = fun p ctx y -> inverse ctx y (List.ofArray (scoped p))
          Observe = if arr |> Array.exists (fun b -> b.Observe.IsSome) then Some observeLayers else None }
