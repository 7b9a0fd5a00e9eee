/// MADE (Germain et al. 2015, "MADE: Masked Autoencoder for Distribution Estimation"): an MLP whose
/// weights are multiplied by fixed binary masks, so that the k outputs of input dimension d depend
/// only on the inputs of smaller order. Plain and residual (nflows' MADE and ResidualMADE) forms.
namespace Flows.Nn

open Flows
open Flows.Tensors

/// The autoregressive order of a MADE's inputs, given as their degrees 1..D: output d may read
/// input i only when degree(i) < degree(d).
[<RequireQualifiedAccess>]
type Order =
    /// Degrees 1, 2, ..., D.
    | Natural
    /// Degrees D, ..., 2, 1.
    | Reversed
    /// A permutation of 1..D drawn from the seed.
    | Random of seed: int
    /// These degrees, a permutation of 1..D (how saved settings restore a random order).
    | Degrees of degrees: int[]

/// A MADE's hyperparameters.
type MadeSpec =
    { Dim: int
      /// Hidden widths, one per layer; the residual form uses the first width for every block.
      Hidden: int list
      /// Outputs per input dimension (k): output d·k + j is parameter j of dimension d.
      Multiplier: int
      Order: Order
      /// Context features, fed unmasked to the first hidden layer and to the output layer (0: none).
      ContextDim: int
      /// Masked residual blocks (nflows' MaskedResidualBlock) of width `Hidden.Head`; 0: plain MLP.
      ResidualBlocks: int
      Activation: Activation }

/// A MADE's structure, fixed at creation: input degrees and each layer's mask (parameters live in
/// `Params`, masks are constants applied as W ⊙ M).
[<NoEquality; NoComparison>]
type Made =
    { Spec: MadeSpec
      /// Degree of each input, a permutation of 1..D.
      Degrees: int[]
      /// Parameter prefix of each layer, in the order `apply` runs them.
      Layers: string[]
      /// Mask [out; in (+ context)] of each layer; 1 keeps a weight, context columns are all 1.
      Masks: Constant[] }

/// Building and running MADEs.
[<RequireQualifiedAccess>]
module Made =

    /// The input degrees of an order on `dim` inputs.
    let inputDegrees (dim: int) (order: Order) =
        Guard.positive (nameof dim) dim
        match order with
        | Order.Natural -> Array.init dim (fun i -> i + 1)
        | Order.Reversed -> Array.init dim (fun i -> dim - i)
        | Order.Random seed -> (Generator(uint64 seed)).permutation(dim).toArrayInt() |> Array.map ((+) 1)
        | Order.Degrees degrees ->
            Guard.that (nameof order) (Array.sort degrees = Array.init dim (fun i -> i + 1))
                $"MADE degrees must be a permutation of 1..{dim}, got {Shape.show degrees}"
            Array.copy degrees

    /// Degrees of a hidden layer: cycling through 1..D−1, so every degree is present once the width
    /// reaches D−1 (all 0 when D = 1: the units then carry only biases and the context).
    let hiddenDegrees (dim: int) (width: int) =
        let top, low = max 1 (dim - 1), min 1 (dim - 1)
        Array.init width (fun h -> h % top + low)

    /// Degrees of the outputs: each input's degree repeated k times (output d·k + j).
    let outputDegrees (degrees: int[]) (multiplier: int) = degrees |> Array.collect (fun d -> Array.create multiplier d)

    // mask[o, i] = 1 when unit o may read unit i: hidden units read degrees ≤ theirs, outputs
    // strictly smaller ones; the trailing `context` columns are unmasked.
    let private mask (strict: bool) (outputs: int[]) (inputs: int[]) (context: int) =
        let cols = inputs.Length + context
        let keep o i = i >= inputs.Length || (if strict then outputs[o] > inputs[i] else outputs[o] >= inputs[i])
        Constant.ofArray(Array.init (outputs.Length * cols) (fun k -> if keep (k / cols) (k % cols) then 1.0 else 0.0), [| outputs.Length; cols |])

    /// A MADE and its parameters; the output layer starts at zero (the flow starts as the identity),
    /// and so does the second layer of each residual block.
    let create (gen: Generator) (dtype: Dtype) (spec: MadeSpec) : Made * Params =
        Guard.positive (nameof spec.Multiplier) spec.Multiplier
        spec.Hidden |> List.iter (Guard.positive (nameof spec.Hidden))
        Guard.that (nameof spec.ContextDim) (spec.ContextDim >= 0) $"the context size must be at least 0, got {spec.ContextDim}"
        Guard.that (nameof spec.ResidualBlocks) (spec.ResidualBlocks >= 0) $"the number of residual blocks must be at least 0, got {spec.ResidualBlocks}"
        Guard.that (nameof spec.Hidden) (spec.ResidualBlocks = 0 || not spec.Hidden.IsEmpty) "a residual MADE needs a hidden width"
        let degrees = inputDegrees spec.Dim spec.Order
        let outputs = outputDegrees degrees spec.Multiplier
        let c = spec.ContextDim
        // (prefix, output degrees, input degrees, strict, context columns, zero-initialised)
        let layers =
            if spec.ResidualBlocks = 0 then
                let widths = spec.Hidden |> List.map (hiddenDegrees spec.Dim) |> Array.ofList
                let ins = Array.append [| degrees |] widths
                let n = widths.Length
                [ for i in 0 .. n do
                      if i < n then string i, widths[i], ins[i], false, (if i = 0 then c else 0), false
                      else string i, outputs, ins[i], true, c, true ]
            else
                let hidden = hiddenDegrees spec.Dim spec.Hidden.Head
                [ yield "in", hidden, degrees, false, c, false
                  for b in 0 .. spec.ResidualBlocks - 1 do
                      yield $"block.{b}.0", hidden, hidden, false, 0, false
                      yield $"block.{b}.1", hidden, hidden, false, 0, true
                  yield "out", outputs, hidden, true, c, true ]
        let parameters =
            Params.concat
                [ for name, outs, ins, _, context, zero in layers ->
                      (Mlp.linear gen dtype (ins.Length + context) outs.Length zero).Prefixed name ]
        { Spec = spec
          Degrees = degrees
          Layers = layers |> List.map (fun (name, _, _, _, _, _) -> name) |> Array.ofList
          Masks = layers |> List.map (fun (_, outs, ins, strict, context, _) -> mask strict outs ins context) |> Array.ofList },
        parameters

    /// Runs the MADE on rows [n; D] (and the context rows [n; C] when it has one): [n; D·k].
    let apply (made: Made) (p: Params) (context: Tensor option) (x: Tensor) =
        let spec = made.Spec
        let withContext (h: Tensor) =
            match context with
            | Some c when spec.ContextDim > 0 -> Tensor.cat([| h; c |], 1)
            | None when spec.ContextDim > 0 -> invalidArg "context" $"this MADE needs a context of {spec.ContextDim} features"
            | _ -> h
        let layer (i: int) (activation: Backend.Activation) (h: Tensor) =
            let name = made.Layers[i]
            let w = p[name + ".weight"]
            Tensor.dense(h, w * made.Masks[i].Like w, p[name + ".bias"], activation)
        let last = made.Layers.Length - 1
        if spec.ResidualBlocks = 0 then
            let act = Mlp.fused spec.Activation
            let mutable h = layer 0 (if last = 0 then Backend.Activation.Identity else act) (withContext x)
            for i in 1 .. last do
                let input = if i = last then withContext h else h
                h <- layer i (if i = last then Backend.Activation.Identity else act) input
            h
        else
            let identity = Backend.Activation.Identity
            let mutable h = layer 0 identity (withContext x)
            for b in 0 .. spec.ResidualBlocks - 1 do
                let inner = h |> Mlp.activate spec.Activation |> layer (1 + 2 * b) identity |> Mlp.activate spec.Activation |> layer (2 + 2 * b) identity
                h <- h + inner
            layer last identity (withContext h)

    /// Settings that rebuild the same MADE (the order is saved as degrees).
    let settings (made: Made) : (string * Setting) list =
        let spec = made.Spec
        [ "dim", Setting.Int spec.Dim
          "hidden", Setting.Ints(Array.ofList spec.Hidden)
          "multiplier", Setting.Int spec.Multiplier
          "order", Setting.Ints made.Degrees
          "contextDim", Setting.Int spec.ContextDim
          "residualBlocks", Setting.Int spec.ResidualBlocks
          "activation", Setting.Text(Activation.name spec.Activation) ]

    /// The MADE spec saved settings describe.
    let ofSettings (s: Settings) : MadeSpec =
        { Dim = Settings.int "dim" s
          Hidden = List.ofArray (Settings.ints "hidden" s)
          Multiplier = Settings.int "multiplier" s
          Order = Order.Degrees(Settings.ints "order" s)
          ContextDim = Settings.int "contextDim" s
          ResidualBlocks = Settings.int "residualBlocks" s
          Activation = Activation.parse (Settings.text "activation" s) }
