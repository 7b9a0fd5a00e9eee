/// Block neural autoregressive flow (B-NAF, De Cao et al. 2019, "Block Neural Autoregressive Flow"):
/// one masked network whose weight matrices are lower block-triangular, the diagonal blocks positive
/// (exp of the stored values), with tanh between layers, plus a positive gated skip g ⊙ x:
///   inverse (data → base)  z = g ⊙ x + W_L tanh(… tanh(W_1 x + b_1) …) + b_L, one pass (density)
///   log dz_d/dx_d = log(g_d + Π_l diagonal blocks ⊙ tanh'), the products as log-sum-exps
///   forward (base → data)  bisection per feature in the natural order, one feature at a time
///   (`AutoregressiveInverse.byDegree`).
/// The skip makes each feature's map surjective (tanh alone saturates); feature d reads x_≤d.
/// Conditional B-NAF adds W_c c to the first layer's bias: a context-dependent shift inside tanh,
/// which moves each feature's monotone map without touching the positive diagonal blocks.
module Flows.Bijectors.BlockNeuralAutoregressive

open Flows
open Flows.Nn
open Flows.Tensors

/// Width of the bisection bracket at which the sampling direction stops.
let tolerance = 1e-10

/// A B-NAF layer's hyperparameters.
type Spec =
    { Dim: int
      /// Hidden units per feature in each hidden layer (the blocks are Hidden[l] × Hidden[l − 1]).
      Hidden: int list
      /// Width of the context (0: unconditional); it shifts the first layer's pre-activations.
      ContextDim: int }

// One layer's effective weights: the strictly lower blocks as a full matrix, the diagonal blocks
// [D; out; in] and their logs, and the bias [D; out].
type private Layer =
    { Lower: Tensor
      Diagonal: Tensor
      LogDiagonal: Tensor
      Bias: Tensor }

/// The B-NAF layer with small random weights and a unit skip.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let dim = spec.Dim
    Guard.positive (nameof spec.Dim) dim
    Guard.that (nameof spec.Hidden) (not spec.Hidden.IsEmpty) "B-NAF needs at least one hidden layer (its output is bounded apart from the skip)"
    spec.Hidden |> List.iter (Guard.positive (nameof spec.Hidden))
    Guard.that (nameof spec.ContextDim) (spec.ContextDim >= 0) $"the context size must be at least 0, got {spec.ContextDim}"
    let widths = Array.ofList (1 :: spec.Hidden @ [ 1 ])
    let count = widths.Length - 1
    let blockMask (keep: int -> int -> bool) (outs: int) (ins: int) =
        let cols = dim * ins
        Constant.ofArray(Array.init (dim * outs * cols) (fun k -> if keep (k / cols / outs) (k % cols / ins) then 1.0 else 0.0), [| dim * outs; cols |])
    let lowerMasks = Array.init count (fun l -> blockMask (fun i j -> j < i) widths[l + 1] widths[l])
    let diagonalMasks = Array.init count (fun l -> blockMask (fun i j -> j = i) widths[l + 1] widths[l])
    let parameters =
        Params.ofList
            [ for l in 0 .. count - 1 do
                  let outs, ins = widths[l + 1], widths[l]
                  // diagonal blocks start with rows summing to about one, so tanh starts unsaturated
                  let raw = gen.normal([| dim * outs; dim * ins |], 0.0, 1.0 / sqrt (float (dim * ins)), dtype)
                  let raw = raw - diagonalMasks[l].Like raw * log (float ins)
                  yield $"{l}.weight", raw
                  yield $"{l}.bias", gen.normal([| dim * outs |], 0.0, 0.1, dtype)
              yield "logGate", Tensor.zeros([| dim |], dtype)
              if spec.ContextDim > 0 then
                  yield "context.weight", gen.normal([| dim * widths[1]; spec.ContextDim |], 0.0, 1.0 / sqrt (float spec.ContextDim), dtype) ]
    // the layers for contexts c ([n; C], or None when unconditional): the first bias becomes [n; D; out]
    let layers (p: Params) (c: Tensor option) =
        Array.init count (fun l ->
            let outs, ins = widths[l + 1], widths[l]
            let raw = p[$"{l}.weight"]
            let logDiagonal = (raw * diagonalMasks[l].Like raw).reshape([| dim; outs; dim; ins |]).sum(2)
            let bias = p[$"{l}.bias"].reshape([| dim; outs |])
            { Lower = raw * lowerMasks[l].Like raw
              Diagonal = logDiagonal.exp()
              LogDiagonal = logDiagonal
              Bias =
                match c with
                | Some c when l = 0 -> bias + c.matmul(p["context.weight"].transpose()).reshape([| -1; dim; outs |])
                | _ -> bias })
    // [D; out; in] blocks applied feature by feature to [n; D; in]
    let blocks (w: Tensor) (a: Tensor) = (w.unsqueeze(0) * a.unsqueeze(2)).sum(3)
    // what the earlier features feed into each layer of feature d (from the rows x): [n; D; out] each
    let fromEarlier (ls: Layer[]) (x: Tensor) =
        let n = x.shape[0]
        let mutable a = x.unsqueeze(2)
        [| for l in 0 .. count - 1 do
               let offDiagonal = Tensor.linear(a.reshape([| n; -1 |]), ls[l].Lower).reshape([| n; dim; widths[l + 1] |])
               a <- (offDiagonal + blocks ls[l].Diagonal a + ls[l].Bias).tanh()
               offDiagonal |]
    // feature d's output and log-derivative as x_d runs over m, the earlier features' inputs fixed
    let along (p: Params) (ls: Layer[]) (earlier: Tensor[]) (m: Tensor) =
        let mutable a = m.unsqueeze(2)
        let mutable logJ = m.unsqueeze(2).zerosLike()
        for l in 0 .. count - 2 do
            let h = earlier[l] + blocks ls[l].Diagonal a + ls[l].Bias
            // log tanh'(h) = 2·(log 2 − |h| − softplus(−2|h|)), finite for any h
            let logTanhPrime = (System.Math.Log 2.0 - h.abs() - (h.abs() * -2.0).softplus()) * 2.0
            logJ <- (ls[l].LogDiagonal.unsqueeze(0) + logJ.unsqueeze(2)).logsumexp(3) + logTanhPrime
            a <- h.tanh()
        let last = count - 1
        let f = (earlier[last] + blocks ls[last].Diagonal a + ls[last].Bias).squeeze(2)
        let logF = (ls[last].LogDiagonal.unsqueeze(0) + logJ.unsqueeze(2)).logsumexp(3).squeeze(2)
        let logGate = p["logGate"]
        let y = f + logGate.exp() * m
        y, Tensor.stack([| logF; logF.zerosLike() + logGate |], 2).logsumexp(2)
    let condition (ctx: Context) (x: Tensor) = Context.forLayer "bnaf" spec.ContextDim x.shape[0] ctx
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        let c = condition ctx z
        let ls = layers p c
        let constant = p.Map(fun t -> t.noDiff())
        let lsConstant = layers constant (c |> Option.map (fun c -> c.noDiff()))
        let last = count - 1
        let n = z.shape[0]
        // feature d solved once its earlier features are final, in the natural order
        z |> AutoregressiveInverse.byDegree (Array.init dim (fun d -> d + 1)) (fun x d zd ->
            let earlier = fromEarlier ls x
            let earlierConstant = earlier |> Array.map (fun t -> t.noDiff())
            // feature d's output and log-derivative as x_d runs over m [n; 1]: every feature reads m
            // as its own input, and feature d reads only its own
            let at (p: Params) (ls: Layer[]) (earlier: Tensor[]) (m: Tensor) =
                let y, logDerivative = along p ls earlier (m.expand [| n; dim |])
                y.narrow(1, d, 1), logDerivative.narrow(1, d, 1)
            // z_d − g_d·x_d lies within ±Σ_k exp(W_L[d, k]) of what the earlier features and the bias give
            let centre = (earlierConstant[last] + lsConstant[last].Bias).squeeze(2).narrow(1, d, 1)
            let reach = lsConstant[last].Diagonal.sum(2).squeeze(1).narrow(0, d, 1)
            let gate = constant["logGate"].exp().narrow(0, d, 1)
            let target = zd.noDiff()
            let root = RootFind.bisect (at constant lsConstant earlierConstant >> fst) target ((target - centre - reach) / gate) ((target - centre + reach) / gate) tolerance
            let xd = RootFind.newtonStep (at p ls earlier >> fst) (fun m -> (snd (at p ls earlier m)).exp()) zd root
            xd, -(snd (at p ls earlier xd)))
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let ls = layers p (condition ctx x)
        let z, logDerivative = along p ls (fromEarlier ls x) x
        z, logDerivative.sum(1)
    let settings =
        Settings.ofList
            [ "dim", Setting.Int dim
              "hidden", Setting.Ints(Array.ofList spec.Hidden)
              "order", Setting.Ints(Array.init dim (fun i -> i + 1))
              "contextDim", Setting.Int spec.ContextDim ]
    Bijector.create "bnaf" settings [| dim |] parameters forward inverse

let private rebuild (dtype: Dtype) (s: Settings) =
    // models saved before conditional B-NAF have no context
    let contextDim = if s.ContainsKey "contextDim" then Settings.int "contextDim" s else 0
    create (Generator 0UL) dtype { Dim = Settings.int "dim" s; Hidden = List.ofArray (Settings.ints "hidden" s); ContextDim = contextDim }

let private entryFor (name: string) =
    let spec (d: int) = { Dim = d; Hidden = [ 4; 4 ]; ContextDim = 0 }
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = InverseKind.Iterative tolerance }

[<CatalogueEntry>]
let entry = entryFor "bnaf"
