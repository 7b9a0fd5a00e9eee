namespace Flows

open Flows.Tensors

/// What a bijector sees besides its input: an optional conditioning tensor [batch; contextDim] and
/// whether this is a training pass (batch norm uses batch statistics then).
type Context =
    { Condition: Tensor option
      Training: bool }

/// Building contexts.
[<RequireQualifiedAccess>]
module Context =
    /// No condition, evaluation mode.
    let none = { Condition = None; Training = false }
    /// No condition, training mode.
    let training = { Condition = None; Training = true }
    /// A conditioning tensor, evaluation mode.
    let ofCondition (c: Tensor) = { Condition = Some c; Training = false }

    /// The context of rows start .. start + count − 1 of a batch.
    let rows (start: int) (count: int) (ctx: Context) = { ctx with Condition = ctx.Condition |> Option.map (fun c -> c.narrow(0, start, count)) }

    /// The condition of a layer built for contexts of width `contextDim` > 0 reading `rows` rows:
    /// raises an ArgumentException on "context" when it is missing or not [rows; contextDim].
    let require (layer: string) (contextDim: int) (rows: int) (ctx: Context) =
        match ctx.Condition with
        | Some c when c.dim = 2 && c.shape[0] = rows && c.shape[1] = contextDim -> c
        | Some c -> invalidArg "context" $"{layer}: expected a context [{rows}; {contextDim}] (one row per input row), got {Shape.show c.shape}"
        | None -> invalidArg "context" $"{layer}: this layer is conditional and needs a context of {contextDim} features per row"

    /// The condition a layer built for contexts of width `contextDim` reads: None when the layer is
    /// unconditional (`contextDim` = 0, any context is ignored), else as `require`.
    let forLayer (layer: string) (contextDim: int) (rows: int) (ctx: Context) =
        if contextDim = 0 then None else Some(require layer contextDim rows ctx)

/// A map and its per-row log|det J|: both sides of a bijector return this pair.
type MapWithLogDet = Params -> Context -> Tensor -> Tensor * Tensor

/// An invertible map between rows of shape [batch; ...Event].
/// Direction: Forward maps base → data (sampling); Inverse maps data → base (density).
/// Each returns the mapped rows and log|det J| of the map it applies, shape [batch].
/// Learnable tensors live in `Params`, unconstrained; the functions read them only from their
/// first argument, so `{ b with Params = p }` is the whole update step. `Buffers` hold state that
/// is not learnt (running averages); `Observe` maps (params, buffers) and a data-side input batch to
/// new ones (ActNorm's data initialisation, batch-norm running statistics).
[<NoEquality; NoComparison>]
type Bijector =
    { Name: string
      Settings: Settings
      Event: int[]
      Params: Params
      Buffers: Params
      Forward: MapWithLogDet
      Inverse: MapWithLogDet
      Observe: (Params -> Params -> Context -> Tensor -> Params * Params) option }

/// Functions on bijectors.
[<RequireQualifiedAccess>]
module Bijector =

    /// A bijector with no buffers and no observation hook.
    let create (name: string) (settings: Settings) (event: int[]) (parameters: Params) (forward: MapWithLogDet) (inverse: MapWithLogDet) =
        { Name = name
          Settings = settings
          Event = event
          Params = parameters
          Buffers = Params.empty
          Forward = forward
          Inverse = inverse
          Observe = None }

    /// What the maps read: the learnable parameters, followed by the buffers when there are any.
    let withBuffers (p: Params) (b: Bijector) = if b.Buffers.Count = 0 then p else Params.concat [ p; b.Buffers ]

    /// Forward (base → data) with the bijector's own parameters.
    let forward (ctx: Context) (x: Tensor) (b: Bijector) = b.Forward (withBuffers b.Params b) ctx x

    /// Inverse (data → base) with the bijector's own parameters.
    let inverse (ctx: Context) (y: Tensor) (b: Bijector) = b.Inverse (withBuffers b.Params b) ctx y

    /// The same map run the other way: Forward and Inverse swap.
    let invert (b: Bijector) =
        { b with
            Forward = b.Inverse
            Inverse = b.Forward
            Settings = b.Settings |> Map.add "inverted" (Setting.Int 1) }

    /// Zero log-dets for the rows of `x`.
    /// The bijector with its parameters and buffers on `device`.
    let moveTo (device: Device) (b: Bijector) =
        let move (p: Params) = p.Map(fun t -> t.moveTo device)
        { b with Params = move b.Params; Buffers = move b.Buffers }

    let zeroLogDet (x: Tensor) = Tensor.zeros([| x.shape[0] |], x.dtype, x.device)

    /// Sums every dimension but the batch one: per-row totals of element-wise log-derivatives.
    let sumRows (t: Tensor) = if t.dim = 1 then t else t.reshape([| t.shape[0]; -1 |]).sum(1)
