namespace Flows.Nn

open Flows
open Flows.Tensors

/// The network that computes a transformer's parameters from the conditioning features (and the
/// context): a plain MLP or a residual MLP, both with a zero-initialised last layer so the flow
/// starts as the identity.
[<RequireQualifiedAccess>]
type Conditioner =
    /// Hidden layer sizes and activation.
    | Mlp of hidden: int list * activation: Activation
    /// nflows' ResidualNet: width, number of residual blocks, activation.
    | Residual of width: int * blocks: int * activation: Activation

/// Building and running conditioners.
[<RequireQualifiedAccess>]
module Conditioner =

    /// Parameters for `inputs` → `outputs`.
    let create (gen: Generator) (dtype: Dtype) (inputs: int) (outputs: int) (conditioner: Conditioner) : Params =
        match conditioner with
        | Conditioner.Mlp(hidden, _) -> Mlp.create gen dtype ([ inputs ] @ hidden @ [ outputs ]) true
        | Conditioner.Residual(width, blocks, _) -> ResidualMlp.create gen dtype inputs width blocks outputs true

    /// Runs the conditioner on rows [n; inputs].
    let apply (conditioner: Conditioner) (p: Params) (x: Tensor) =
        match conditioner with
        | Conditioner.Mlp(_, activation) -> Mlp.apply activation p x
        | Conditioner.Residual(_, blocks, activation) -> ResidualMlp.apply activation blocks p x

    /// Settings that rebuild the conditioner.
    let settings (conditioner: Conditioner) : (string * Setting) list =
        match conditioner with
        | Conditioner.Mlp(hidden, activation) ->
            [ "conditioner", Setting.Text "mlp"; "hidden", Setting.Ints(Array.ofList hidden); "activation", Setting.Text(Activation.name activation) ]
        | Conditioner.Residual(width, blocks, activation) ->
            [ "conditioner", Setting.Text "residual"; "width", Setting.Int width; "blocks", Setting.Int blocks
              "activation", Setting.Text(Activation.name activation) ]

    /// The conditioner saved settings describe.
    let ofSettings (s: Settings) =
        let activation = Activation.parse (Settings.text "activation" s)
        match Settings.text "conditioner" s with
        | "mlp" -> Conditioner.Mlp(List.ofArray (Settings.ints "hidden" s), activation)
        | "residual" -> Conditioner.Residual(Settings.int "width" s, Settings.int "blocks" s, activation)
        | other -> invalidArg "settings" $"unknown conditioner '{other}'"
