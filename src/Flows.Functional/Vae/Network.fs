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

/// The shape of the encoder and decoder.
[<RequireQualifiedAccess>]
type Architecture =
    /// Fully connected layers on the flattened data.
    | Mlp
    /// For images [c; h; w] with h, w divisible by 4: two 3×3 convolutions with 2×2 average pooling
    /// (`channels`, then 2·`channels`) before the dense layers; the decoder mirrors them with
    /// nearest-neighbour upsampling.
    | Conv of channels: int

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

    // 2×2 average pooling and nearest-neighbour upsampling of images [n; c; h; w]
    let private pool (x: Tensor) =
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        x.reshape([| n; c; h / 2; 2; w / 2; 2 |]).mean(5).mean(3)

    let private upsample (x: Tensor) =
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        x.unsqueeze(3).unsqueeze(5).expand([| n; c; h; 2; w; 2 |]).reshape [| n; c; 2 * h; 2 * w |]

    let private checkImages (event: int[]) =
        Guard.that (nameof event) (event.Length = 3 && event[1] % 4 = 0 && event[2] % 4 = 0)
            $"a convolutional VAE needs images [c; h; w] with h and w divisible by 4, got {Shape.show event}"

    /// A convolutional encoder for images `event` = [c; h; w]: conv(c → k), pool, conv(k → 2k), pool,
    /// then dense layers through `hidden`, `activation` after each (the features).
    let convEncoder (gen: Generator) (dtype: Dtype) (activation: Activation) (channels: int) (event: int[]) (hidden: int list) =
        checkImages event
        Guard.positive (nameof channels) channels
        Guard.that (nameof hidden) (not hidden.IsEmpty) "a convolutional encoder needs at least one dense width"
        let flat = 2 * channels * (event[1] / 4) * (event[2] / 4)
        let dense = mlp gen dtype activation (flat :: hidden) true
        { Params =
            Params.concat
                [ (Conv.create gen dtype event[0] channels 3 false).Prefixed "conv0"
                  (Conv.create gen dtype channels (2 * channels) 3 false).Prefixed "conv1"
                  dense.Params.Prefixed "dense" ]
          Apply =
            fun p x ->
                let images = x.reshape(Array.append [| x.shape[0] |] event)
                let h = images |> Conv.apply (Some activation) (p.Scope "conv0") |> pool |> Conv.apply (Some activation) (p.Scope "conv1") |> pool
                dense.Apply (p.Scope "dense") (h.reshape [| x.shape[0]; flat |])
          Outputs = dense.Outputs }

    /// The mirror decoder: dense layers `latent` → `hidden` → 2k·(h/4)·(w/4), upsample, conv(2k → k),
    /// upsample, conv(k → `outputChannels`), flattened to [n; outputChannels·h·w] channel by channel.
    let convDecoder (gen: Generator) (dtype: Dtype) (activation: Activation) (channels: int) (event: int[]) (latent: int) (hidden: int list) (outputChannels: int) =
        checkImages event
        Guard.positive (nameof channels) channels
        let h, w = event[1] / 4, event[2] / 4
        let dense = mlp gen dtype activation (latent :: hidden @ [ 2 * channels * h * w ]) true
        { Params =
            Params.concat
                [ dense.Params.Prefixed "dense"
                  (Conv.create gen dtype (2 * channels) channels 3 false).Prefixed "conv0"
                  (Conv.create gen dtype channels outputChannels 3 false).Prefixed "conv1" ]
          Apply =
            fun p z ->
                let n = z.shape[0]
                let images = (dense.Apply (p.Scope "dense") z).reshape [| n; 2 * channels; h; w |]
                let out = images |> upsample |> Conv.apply (Some activation) (p.Scope "conv0") |> upsample |> Conv.apply None (p.Scope "conv1")
                out.reshape [| n; -1 |]
          Outputs = outputChannels * event[1] * event[2] }
