namespace Flows

open Flows.Data
open Flows.Tensors

/// What fitting a model to data minimises; saved with the model, so a reloaded model trains as
/// it was built to.
[<RequireQualifiedAccess>]
type Fitting =
    /// Maximum likelihood (forward KL): the mean negative log-likelihood of the data.
    | MaximumLikelihood
    /// Conditional flow matching (Lipman et al. 2023) of a flow from `FlowMatching.create`, with the
    /// path width σ_min: the velocity field is regressed, densities still come from the CNF.
    | FlowMatching of sigmaMin: float

/// A flow as it is saved and served: the flow, the width of its context (0 when unconditional),
/// the standardisation of raw data columns it was fitted on, if any, and how it is fitted.
/// Direction as for `Flow`: forward maps base → raw data, inverse maps raw data → base.
[<NoEquality; NoComparison>]
type Model =
    { Flow: Flow
      ContextDim: int
      Standardisation: Standardisation option
      Fitting: Fitting }

/// Density, sampling and the two maps of a model, on raw (unstandardised) rows.
[<RequireQualifiedAccess>]
module Model =

    /// A model without standardisation, fitted by maximum likelihood.
    let ofFlow (contextDim: int) (flow: Flow) =
        { Flow = flow; ContextDim = contextDim; Standardisation = None; Fitting = Fitting.MaximumLikelihood }

    /// The model with its flow on `device` (the standardisation follows the rows it is applied to).
    let moveTo (device: Device) (model: Model) = { model with Flow = Flow.moveTo device model.Flow }

    /// log p(x) per raw row.
    let logProb (ctx: Context) (x: Tensor) (model: Model) =
        match model.Standardisation with
        | None -> Flow.logProb ctx x model.Flow
        | Some s -> Flow.logProb ctx (Standardisation.apply s x) model.Flow - Standardisation.logScale s

    /// n raw rows drawn from the model.
    let sample (ctx: Context) (gen: Generator) (n: int) (model: Model) =
        let z = Flow.sample ctx gen n model.Flow
        match model.Standardisation with
        | None -> z
        | Some s -> Standardisation.undo s z

    /// Base points to raw rows, with log|det| of the whole map.
    let forward (ctx: Context) (z: Tensor) (model: Model) =
        let y, logDet = Flow.forward ctx z model.Flow
        match model.Standardisation with
        | None -> y, logDet
        | Some s -> Standardisation.undo s y, logDet + Standardisation.logScale s

    /// Raw rows to base points, with log|det| of the whole map.
    let inverse (ctx: Context) (x: Tensor) (model: Model) =
        match model.Standardisation with
        | None -> Flow.inverse ctx x model.Flow
        | Some s ->
            let z, logDet = Flow.inverse ctx (Standardisation.apply s x) model.Flow
            z, logDet - Standardisation.logScale s
