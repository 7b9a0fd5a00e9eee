namespace Flows.Nn

open Flows
open Flows.Tensors

/// Hypernetwork amortisation (the encoder-produced flow parameters of Rezende & Mohamed 2015 §4 and
/// van den Berg et al. 2018 §4): a linear map of each row's context features h gives that row its
/// own flow parameters, so one layer serves every data point with a map of its own.
[<RequireQualifiedAccess>]
module Amortised =

    /// The linear map's parameters "hyper.weight" [outputs; contextDim] and "hyper.bias" [outputs],
    /// N(0, 0.01²): every row starts near the same map, close to the identity for the flows here.
    let create (gen: Generator) (dtype: Dtype) (contextDim: int) (outputs: int) =
        Guard.positive (nameof contextDim) contextDim
        Params.ofList
            [ "hyper.weight", gen.normal([| outputs; contextDim |], 0.0, 0.01, dtype)
              "hyper.bias", gen.normal([| outputs |], 0.0, 0.01, dtype) ]

    /// The number of outputs that per-row parameters of these shapes need.
    let outputs (shapes: int[] list) = shapes |> List.sumBy Shape.numel

    /// Each row's parameters, one tensor [n; ...shape] per shape in order, from the context in `ctx`
    /// for the n rows of `x`; `name` (the layer's) goes into the error for a missing or misshapen context.
    let rows (name: string) (contextDim: int) (shapes: int[] list) (p: Params) (ctx: Context) (x: Tensor) =
        let n = x.shape[0]
        let out = Tensor.linear(Context.require name contextDim n ctx, p["hyper.weight"], p["hyper.bias"])
        let sizes = shapes |> List.map Shape.numel
        let starts = List.scan (+) 0 sizes
        List.map3 (fun (shape: int[]) start size -> out.narrow(1, start, size).reshape(Array.append [| n |] shape)) shapes (List.take shapes.Length starts) sizes
        |> Array.ofList
