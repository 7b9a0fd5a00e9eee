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
    /// RNODE (Finlay et al. 2020) of a flow of one CNF layer: NLL + λ_K·kinetic energy + λ_J·Jacobian
    /// Frobenius norm, with STEER's random end time T ± `steer` (Ghosh et al. 2020) when given.
    | Rnode of kinetic: float * jacobian: float * steer: float option
    /// OT-Flow (Onken et al. 2021) of a flow of one OT-Flow layer: NLL + α_L·transport cost + α_R·HJB penalty.
    | OtFlow of transport: float * hjb: float

/// A flow as it is saved and served: the flow, the width of its context (0 when unconditional),
/// the standardisations of raw data and context columns it was fitted on, if any, and how it is fitted.
/// Direction as for `Flow`: forward maps base → raw data, inverse maps raw data → base.
[<NoEquality; NoComparison>]
type Model =
    { Flow: Flow
      ContextDim: int
      Standardisation: Standardisation option
      /// Applied to raw context rows before the flow sees them (conditional models).
      ContextStandardisation: Standardisation option
      Fitting: Fitting
      /// The data columns' names (from a CSV header), so that samples can carry them; [] when unknown.
      ColumnNames: string list }

/// Density, sampling and the two maps of a model, on raw (unstandardised) rows.
[<RequireQualifiedAccess>]
module Model =

    /// A model without standardisation, fitted by maximum likelihood.
    let ofFlow (contextDim: int) (flow: Flow) =
        { Flow = flow; ContextDim = contextDim; Standardisation = None; ContextStandardisation = None; Fitting = Fitting.MaximumLikelihood; ColumnNames = [] }

    /// The model with `flow` in place of its own (standardisation, fitting and names kept).
    let withFlow (flow: Flow) (model: Model) = { model with Flow = flow }

    /// The model fitted by `fitting` from now on.
    let withFitting (fitting: Fitting) (model: Model) = { model with Fitting = fitting }

    /// The model with the standardisation of its data columns replaced.
    let withStandardisation (standardisation: Standardisation option) (model: Model) = { model with Standardisation = standardisation }

    /// The model with its flow on `device` (the standardisation follows the rows it is applied to).
    let moveTo (device: Device) (model: Model) = { model with Flow = Flow.moveTo device model.Flow }

    // Raw rows are standardised in their own precision (float64 when they came as doubles), and only
    // then rounded to the flow's: a column of 1e8 + N(0, 1) survives, whereas float32 first would not.
    let private toFlow (model: Model) (t: Tensor) =
        let dtype = model.Flow.Base.Dtype
        if t.dtype = dtype then t else t.cast dtype

    let private standardised (s: Standardisation option) (model: Model) (x: Tensor) =
        match s with
        | None -> toFlow model x
        | Some s -> toFlow model (Standardisation.apply s x)

    /// The context as the flow sees it: raw context rows standardised as at fitting time.
    let context (ctx: Context) (model: Model) =
        match ctx.Condition with
        | Some c -> { ctx with Condition = Some(standardised model.ContextStandardisation model c) }
        | None -> ctx

    let private logScale (model: Model) =
        model.Standardisation |> Option.map Standardisation.logScale |> Option.defaultValue 0.0

    /// log p(x) per raw row.
    let logProb (ctx: Context) (x: Tensor) (model: Model) =
        Flow.logProb (context ctx model) (standardised model.Standardisation model x) model.Flow - logScale model

    /// n raw rows drawn from the model.
    let sample (ctx: Context) (gen: Generator) (n: int) (model: Model) =
        let z = Flow.sample (context ctx model) gen n model.Flow
        match model.Standardisation with
        | None -> z
        | Some s -> Standardisation.undo s z

    /// n raw rows drawn from the model and log p of each, in one pass (no inverse solve: cheap for
    /// flows whose inverse is iterative or autoregressive).
    let sampleAndLogProb (ctx: Context) (gen: Generator) (n: int) (model: Model) =
        let z, logQ = Flow.sampleAndLogProb (context ctx model) gen n model.Flow
        match model.Standardisation with
        | None -> z, logQ
        | Some s -> Standardisation.undo s z, logQ - Standardisation.logScale s

    /// Base points to raw rows, with log|det| of the whole map.
    let forward (ctx: Context) (z: Tensor) (model: Model) =
        let y, logDet = Flow.forward (context ctx model) (toFlow model z) model.Flow
        match model.Standardisation with
        | None -> y, logDet
        | Some s -> Standardisation.undo s y, logDet + Standardisation.logScale s

    /// Raw rows to base points, with log|det| of the whole map.
    let inverse (ctx: Context) (x: Tensor) (model: Model) =
        let z, logDet = Flow.inverse (context ctx model) (standardised model.Standardisation model x) model.Flow
        z, logDet - logScale model
