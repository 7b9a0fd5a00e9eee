namespace Flows.Nn

open Flows
open Flows.Tensors
open Flows.Tensors.Backend

/// Activations of the conditioner networks.
[<RequireQualifiedAccess>]
type Activation =
    | Relu
    | LeakyRelu of slope: float
    | Tanh
    | Elu
    | Softplus

/// Activation names for settings and model files.
[<RequireQualifiedAccess>]
module Activation =
    /// The saved name of an activation.
    let name (a: Activation) =
        match a with
        | Activation.Relu -> "relu"
        | Activation.LeakyRelu slope -> $"leaky-relu:{slope.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
        | Activation.Tanh -> "tanh"
        | Activation.Elu -> "elu"
        | Activation.Softplus -> "softplus"

    /// The activation a saved name stands for.
    let parse (text: string) =
        match text with
        | "relu" -> Activation.Relu
        | "tanh" -> Activation.Tanh
        | "elu" -> Activation.Elu
        | "softplus" -> Activation.Softplus
        | t when t.StartsWith "leaky-relu:" -> Activation.LeakyRelu(float (t.Substring 11))
        | other -> invalidArg "text" $"unknown activation '{other}'"

/// Multi-layer perceptrons as parameters plus a pure apply function. Layer i has "i.weight"
/// [out; in] and "i.bias" [out], initialised like PyTorch's nn.Linear (uniform ±1/√fan_in).
[<RequireQualifiedAccess>]
module Mlp =

    /// Applies an activation.
    let activate (activation: Activation) (x: Tensor) =
        match activation with
        | Activation.Relu -> x.relu()
        | Activation.LeakyRelu slope -> x.leakyRelu slope
        | Activation.Tanh -> x.tanh()
        | Activation.Elu -> x.elu 1.0
        | Activation.Softplus -> x.softplus()

    /// One linear layer's parameters, uniform in ±1/√fan_in (zeros when `zero`).
    let linear (gen: Generator) (dtype: Dtype) (fanIn: int) (fanOut: int) (zero: bool) =
        let bound = 1.0 / sqrt (float (max fanIn 1))
        let draw shape = if zero then Tensor.zeros(shape, dtype) else gen.uniform(shape, -bound, bound, dtype)
        Params.ofList [ "weight", draw [| fanOut; fanIn |]; "bias", draw [| fanOut |] ]

    /// Parameters of an MLP with the given layer sizes (input first, output last). With
    /// `zeroLast` the last layer starts at zero, so the network outputs zeros (identity flows).
    let create (gen: Generator) (dtype: Dtype) (sizes: int list) (zeroLast: bool) : Params =
        let sizes = Array.ofList sizes
        Guard.that (nameof sizes) (sizes.Length >= 2) $"an MLP needs at least input and output sizes, got {sizes.Length}"
        sizes |> Array.iter (Guard.positive (nameof sizes))
        Params.concat
            [ for i in 0 .. sizes.Length - 2 ->
                  (linear gen dtype sizes[i] sizes[i + 1] (zeroLast && i = sizes.Length - 2)).Prefixed(string i) ]

    /// Number of layers in MLP parameters made by `create`.
    let depth (p: Params) = p.Count / 2

    /// The fused-kernel form of an activation.
    let fused (activation: Activation) =
        match activation with
        | Activation.Relu -> Backend.Activation.Relu
        | Activation.LeakyRelu slope -> Backend.Activation.LeakyRelu slope
        | Activation.Tanh -> Backend.Activation.Tanh
        | Activation.Elu -> Backend.Activation.Elu 1.0
        | Activation.Softplus -> Backend.Activation.Softplus

    // layer names built once: string formatting per call would cost more than a small layer
    let private names = Array.init 64 (fun i -> $"{i}.weight", $"{i}.bias")

    /// Runs the MLP on rows [n; in]: fused dense layers with `activation` between them (none after
    /// the last).
    let apply (activation: Activation) (p: Params) (x: Tensor) =
        let n = depth p
        let act = fused activation
        let mutable h = x
        for i in 0 .. n - 1 do
            let w, b = if i < names.Length then names[i] else ($"{i}.weight", $"{i}.bias")
            h <- Tensor.dense(h, p[w], p[b], (if i < n - 1 then act else Backend.Activation.Identity))
        h

/// Residual MLPs (nflows' ResidualNet): a linear map in, blocks x + L(act(L(act x))), a linear map
/// out (zero-initialised when asked).
[<RequireQualifiedAccess>]
module ResidualMlp =

    /// Parameters: "in", "block.i.0", "block.i.1", "out".
    let create (gen: Generator) (dtype: Dtype) (input: int) (hidden: int) (blocks: int) (output: int) (zeroLast: bool) =
        Params.concat
            [ yield (Mlp.linear gen dtype input hidden false).Prefixed "in"
              for b in 0 .. blocks - 1 do
                  yield (Mlp.linear gen dtype hidden hidden false).Prefixed $"block.{b}.0"
                  // The second layer of a block starts small so each block starts near the identity.
                  yield (Mlp.linear gen dtype hidden hidden true).Prefixed $"block.{b}.1"
              yield (Mlp.linear gen dtype hidden output zeroLast).Prefixed "out" ]

    /// Runs the residual MLP.
    let apply (activation: Activation) (blocks: int) (p: Params) (x: Tensor) =
        let lin (name: string) (h: Tensor) = Tensor.linear(h, p[$"{name}.weight"], p[$"{name}.bias"])
        let mutable h = lin "in" x
        for b in 0 .. blocks - 1 do
            let inner = h |> Mlp.activate activation |> lin $"block.{b}.0" |> Mlp.activate activation |> lin $"block.{b}.1"
            h <- h + inner
        lin "out" h
