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

    /// log q(x) per row. Rows are scored independently, on the CPU in blocks of rows (outside
    /// training, where batch statistics would see only a block).
    let logProb (ctx: Context) (x: Tensor) (flow: Flow) =
        Guard.event (nameof x) flow.Base.Event x
        let n = x.shape[0]
        if ctx.Training || x.device <> Device.Cpu || n <= 2 * scoringBlock then score ctx x flow
        else
            Tensor.cat([| for start in 0 .. scoringBlock .. n - 1 do
                            let count = min scoringBlock (n - start)
                            Memory.reusing (fun () -> score (Context.rows start count ctx) (x.narrow(0, start, count)) flow) |], 0)

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
