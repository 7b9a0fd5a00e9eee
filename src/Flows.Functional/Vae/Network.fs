namespace Flows.Vae

open Flows
open Flows.Nn
open Flows.Tensors

/// An encoder trunk or a decoder as data: learnable parameters and a pure function of them from rows
/// [n; ...] to rows [n; Outputs].
[<NoEquality; NoComparison>]
type Network =
    { Params: Params
      Apply: Params -> Tensor -> Tensor
      Outputs: int }

/// Building networks.
[<RequireQualifiedAccess>]
module Network =

    /// A function with no learnable parameters (a fixed decoder of a model whose likelihood is known).
    let constant (outputs: int) (f: Tensor -> Tensor) = { Params = Params.empty; Apply = (fun _ x -> f x); Outputs = outputs }

    /// An MLP on flattened rows through `sizes` (input first), `activation` between layers and, when
    /// `activateLast`, after the last (an encoder's features). Sizes [d] alone: the flattened input.
    let mlp (gen: Generator) (dtype: Dtype) (activation: Activation) (sizes: int list) (activateLast: bool) =
        let flat (x: Tensor) = if x.dim = 2 then x else x.reshape [| x.shape[0]; -1 |]
        match sizes with
        | [ d ] -> constant d flat
        | _ ->
            let last (h: Tensor) = if activateLast then Mlp.activate activation h else h
            { Params = Mlp.create gen dtype sizes false
              Apply = fun p x -> Mlp.apply activation p (flat x) |> last
              Outputs = List.last sizes }
