namespace Flows

open Flows.Tensors
open Flows.Distributions

/// A normalising flow: a base distribution pushed through bijectors. Layer order is the forward
/// (sampling) order: base → layers[0] → ... → data. Density evaluation runs the inverses backwards.
[<NoEquality; NoComparison>]
type Flow =
    { Base: Distribution
      Layers: Bijector list }

/// Density, sampling and parameter plumbing for flows.
[<RequireQualifiedAccess>]
module Flow =

    /// A flow from a base and layers.
    let create (baseDistribution: Distribution) (layers: Bijector list) = { Base = baseDistribution; Layers = layers }

    /// Every learnable tensor: "base.*" then "layers.i.*".
    let parameters (flow: Flow) =
        Params.concat
            [ yield flow.Base.Params.Prefixed "base"
              for i, b in List.indexed flow.Layers -> b.Params.Prefixed $"layers.{i}" ]

    /// Every tensor the flow holds by name: the parameters, then the layers' buffers.
    let tensors (flow: Flow) =
        [ yield! (parameters flow).Values
          for b in flow.Layers do yield! b.Buffers.Values ]

    /// The flow with its learnable tensors replaced (same names, as from `parameters`).
    let withParameters (p: Params) (flow: Flow) =
        { Base = { flow.Base with Params = p.Scope "base" }
          Layers = flow.Layers |> List.mapi (fun i b -> { b with Params = p.Scope $"layers.{i}" }) }

    /// The flow with every parameter and buffer on `device`, sampling there: train and evaluate it
    /// with data moved to the same device (`x.moveTo device`).
    let moveTo (device: Device) (flow: Flow) =
        { Base = Distribution.moveTo device flow.Base
          Layers = flow.Layers |> List.map (Bijector.moveTo device) }

    // log q(x) per row in one pass
    let private score (ctx: Context) (x: Tensor) (flow: Flow) =
        let z, logDet = Compose.inverse ctx x flow.Layers
        flow.Base.LogProb flow.Base.Params z + logDet

    /// log q(x) per row, with parameters `p` (for differentiation).
    let logProbWith (p: Params) (ctx: Context) (x: Tensor) (flow: Flow) = score ctx x (withParameters p flow)

    // Rows scored at once on the CPU: a block's intermediates (hidden activations, spline
    // parameters) stay in cache, where a pass over 65,536 rows streams each through memory.
    let private scoringBlock = 512

    // Blocks may be scored on several threads when every layer is the library's own (their code is
    // free of shared mutable state) and none estimates its log-det from random draws, whose order
    // across threads would make scores differ from run to run.
    let private threadSafe (flow: Flow) =
        flow.Layers
        |> List.forall (fun b ->
            match Catalogue.tryFind b.Name with
            | Some entry -> entry.LogDetKind <> LogDetKind.Estimated && b.Name <> "chain"
            | None -> false)

    /// log q(x) per row. Rows are scored independently: on the CPU, outside training (where batch
    /// statistics would see only a block) and outside differentiation, in blocks of rows, spread
    /// over the cores for the library's deterministic layers.
    let logProb (ctx: Context) (x: Tensor) (flow: Flow) =
        Guard.event (nameof x) flow.Base.Event x
        let n = x.shape[0]
        let constant = x.isConst && (tensors flow |> List.forall _.isConst) && (ctx.Condition |> Option.forall _.isConst)
        if ctx.Training || x.device <> Device.Cpu || n <= 2 * scoringBlock || not constant then score ctx x flow
        else
            let starts = [| 0 .. scoringBlock .. n - 1 |]
            let blocks = Array.zeroCreate starts.Length
            let scoreBlock (i: int) =
                let start = starts[i]
                let count = min scoringBlock (n - start)
                blocks[i] <- Memory.reusing (fun () -> score (Context.rows start count ctx) (x.narrow(0, start, count)) flow)
            if System.Environment.ProcessorCount > 1 && threadSafe flow then
                System.Threading.Tasks.Parallel.For(0, starts.Length, scoreBlock) |> ignore
            else
                for i in 0 .. starts.Length - 1 do scoreBlock i
            Tensor.cat(blocks, 0)

    /// Draws n samples and their log q, in one pass, with parameters `p` (reparameterised).
    let sampleAndLogProbWith (p: Params) (ctx: Context) (gen: Generator) (n: int) (flow: Flow) =
        let flow = withParameters p flow
        let z = Distribution.sample flow.Base flow.Base.Params gen n
        let logBase = flow.Base.LogProb flow.Base.Params z
        let x, logDet = Compose.forward ctx z flow.Layers
        x, logBase - logDet

    /// Draws n samples and their log q in one pass.
    let sampleAndLogProb (ctx: Context) (gen: Generator) (n: int) (flow: Flow) =
        Guard.positive (nameof n) n
        sampleAndLogProbWith (parameters flow) ctx gen n flow

    /// Draws n samples.
    let sample (ctx: Context) (gen: Generator) (n: int) (flow: Flow) =
        Guard.positive (nameof n) n
        let z = Distribution.sample flow.Base flow.Base.Params gen n
        fst (Compose.forward ctx z flow.Layers)

    /// Maps base points to data (the forward maps), with the summed log-det.
    let forward (ctx: Context) (z: Tensor) (flow: Flow) = Compose.forward ctx z flow.Layers

    /// Maps data to base points (the inverse maps), with the summed log-det.
    let inverse (ctx: Context) (x: Tensor) (flow: Flow) = Compose.inverse ctx x flow.Layers

    /// Lets layers with an observation hook (ActNorm's data initialisation, batch-norm running
    /// statistics) see their data-side inputs for the batch `x`; returns the updated flow.
    let observe (ctx: Context) (x: Tensor) (flow: Flow) =
        if flow.Layers |> List.forall (fun b -> b.Observe.IsNone) then flow
        else { flow with Layers = Compose.observe ctx x flow.Layers }

    /// Data-dependent initialisation done once (Glow's ActNorm on a first batch): the flow after
    /// observing `x`, without observation hooks, so that training does not pay a pass per step for
    /// layers that only initialise. Not for layers that keep observing (batch-norm statistics).
    let initialise (ctx: Context) (x: Tensor) (flow: Flow) =
        { flow with Layers = (observe ctx x flow).Layers |> List.map (fun b -> { b with Observe = None }) }
