namespace Flows.Training

open System
open Flows
open Flows.Bijectors
open Flows.Continuous
open Flows.Data
open Flows.Distributions
open Flows.Nn
open Flows.Transformers
open Flows.Tensors

/// Options of `DataFit.fit`: `None` means "chosen from the table's size" (see `TableCapacity`).
type DataFitOptions =
    { /// Optimiser steps; None: up to `MaxEpochs` passes, stopped early on validation.
      Steps: int option
      MaxEpochs: int option
      BatchSize: int option
      LearningRate: float
      WeightDecay: float option
      /// Share of rows held out; None: at least 20 % and at least 50 rows (half of tiny tables); 0: none.
      ValidationFraction: float option
      /// Stop once validation has not improved for this many epochs.
      PatienceEpochs: int option
      /// Steps between validations; None: every epoch (every 250 steps when epochs are longer).
      ValidateEvery: int option
      /// Put a shrunk full-covariance Gaussian of the training rows under the flow, and keep only that
      /// Gaussian when the trained flow is not better on validation beyond noise.
      GaussianFloor: bool
      /// Standardise data and context columns (in float64) when the model has no standardisation yet.
      Standardise: bool
      ClipNorm: float option
      /// The optimiser, its weight decay replaced by the one the fit resolves (`WeightDecay` or the
      /// table's rule); None: AdamW, or Adam when that weight decay is 0.
      Optimiser: Optimiser option
      /// The learning-rate schedule, given the number of steps the fit plans (at most).
      Schedule: int -> Schedule
      Seed: uint64
      ReportEvery: int
      /// Progress with losses in nats of the user's data (the standardisation's log-det included).
      Progress: (Progress -> unit) option
      ShouldStop: (unit -> bool) option
      /// After choosing on validation, fit the chosen model again on every row (the Gaussian in closed
      /// form, the flow for the chosen number of steps); None: when the table has at most 5,000 rows.
      RefitOnAllRows: bool option }

/// Which model a fit returned.
[<RequireQualifiedAccess>]
type ChosenModel =
    /// The trained flow (on top of the Gaussian stage when there is one).
    | Flow
    /// Only the Gaussian stage: the flow was not better on validation beyond noise.
    | Gaussian

/// Where a default fit's layers act: on rows whitened by the Gaussian stage, or on the standardised
/// columns themselves.
[<RequireQualifiedAccess>]
type Layout =
    | Whitened
    | Plain

/// How a data fit went; every NLL is a mean per row in nats of the user's data.
type DataFitReport =
    { Chosen: ChosenModel
      TrainRows: int
      ValidationRows: int
      /// The returned model's validation NLL.
      ValidationNll: float option
      /// The trained flow's best validation NLL (whether or not it was chosen).
      FlowValidationNll: float option
      /// The Gaussian floor's validation NLL.
      GaussianValidationNll: float option
      /// Ledoit–Wolf shrinkage of the Gaussian's covariance (0: none, 1: a scaled identity).
      Shrinkage: float option
      /// The training run; its losses and validations are in the user's units too.
      Training: Report
      /// True when the returned model was fitted again on every row after the choice.
      Refitted: bool
      Warnings: string list }

/// The default fit of a model to a table: standardisation in float64, a split by table size, a fixed
/// Gaussian stage of the training rows, the flow's layers trained on whitened and on standardised
/// rows with early stopping, and a final choice between the better flow and the Gaussian on validation.
[<RequireQualifiedAccess>]
module DataFit =

    /// Everything chosen from the table's size, with the Gaussian floor, standardisation and clipping at 10.
    let defaults =
        { Steps = None
          MaxEpochs = None
          BatchSize = None
          LearningRate = 1e-3
          WeightDecay = None
          ValidationFraction = None
          PatienceEpochs = None
          ValidateEvery = None
          GaussianFloor = true
          Standardise = true
          ClipNorm = Some 10.0
          Optimiser = None
          Schedule = fun _ -> Schedule.Constant
          Seed = 0UL
          ReportEvery = 10
          Progress = None
          ShouldStop = None
          RefitOnAllRows = None }

    /// Held-out rows for a table of `rows` rows: at least 20 % and at least 50 (at most half), at most
    /// 20,000; or the given fraction.
    let validationRows (fraction: float option) (rows: int) =
        match fraction with
        | Some f ->
            Guard.that "ValidationFraction" (f >= 0.0 && f < 1.0) $"must be in [0, 1), got {f}"
            int (Math.Floor(float rows * f))
        | None -> min 20000 (max (int (Math.Ceiling(0.2 * float rows))) (min 50 (rows / 2)))

    /// The default table flow of `capacity` for `columns` columns: RQ spline couplings, each after a
    /// fixed random permutation (one spline MAF layer for a single column); identity at start.
    let defaultFlow (capacity: TableCapacity) (columns: int) (contextColumns: int) (seed: uint64) =
        let gen = Generator seed
        let hidden = [ capacity.Hidden; capacity.Hidden ]
        let layers =
            if columns = 1 then
                [ SplineAutoregressive.create gen Dtype.Float32
                    { Dim = 1; Hidden = hidden; Order = Order.Natural; Activation = Activation.Relu; ResidualBlocks = 0
                      Spline = SplineKind.RationalQuadratic; Bins = capacity.Bins; Bound = capacity.TailBound; ContextDim = contextColumns } ]
            else
                [ for _ in 1 .. capacity.Layers do
                    Permute.random gen columns
                    SplineCoupling.create gen Dtype.Float32
                        { Dim = columns; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp(hidden, Activation.Relu)
                          Spline = SplineKind.RationalQuadratic; Bins = capacity.Bins; Bound = capacity.TailBound; ContextDim = contextColumns } ]
        Flow.create (Distribution.standardNormal [| columns |] Dtype.Float32) layers

    // Refuses columns that would make a density collapse onto a value: constant or exact duplicates.
    let private checkColumns (what: string) (x: float[]) (n: int) (d: int) =
        let column j = Array.init n (fun i -> x[i * d + j])
        let columns = Array.init d column
        for j in 0 .. d - 1 do
            let c = columns[j]
            if c |> Array.forall (fun v -> v = c[0]) then
                invalidArg what $"column {j + 1} is constant ({c[0]} in all {n} rows): a density over it would collapse onto that value; drop the column"
        for j in 0 .. d - 1 do
            for k in j + 1 .. d - 1 do
                if columns[j] = columns[k] then
                    invalidArg what $"columns {j + 1} and {k + 1} are identical in all {n} rows: the density would collapse onto their diagonal; drop one of them"

    // A float32 table whose column is large relative to its spread has lost digits already.
    let private precisionWarnings (data: Tensor) (s: Standardisation) =
        if data.dtype <> Dtype.Float32 then []
        else
            [ for j in 0 .. s.Mean.Length - 1 do
                if abs s.Mean[j] > 1e3 * s.Scale[j] then
                    $"column {j + 1}: values around {s.Mean[j]:G4} vary by only {s.Scale[j]:G3}; float32 keeps about 7 digits, so pass the data as float64 (double[,]) to keep its spread" ]

    // The rows `index` of t [n; d]; every row (a permutation, when nothing is held out) is t itself,
    // since training shuffles anyway.
    let private rows (index: int[]) (t: Tensor) =
        if index.Length = t.shape[0] then t
        else
            let d = t.shape[1]
            let x = t.toArray64()
            let picked = Array.zeroCreate (index.Length * d)
            index |> Array.iteri (fun i r -> Array.blit x (r * d) picked (i * d) d)
            Tensor.ofArray(picked, [| index.Length; d |])

    let private meanAndError (values: float[]) =
        let m = Array.average values
        let variance = values |> Array.sumBy (fun v -> (v - m) * (v - m)) |> fun s -> s / float (max 1 (values.Length - 1))
        m, sqrt (variance / float values.Length)

    /// Fits `model` to raw rows `data` [n; d] (float64 keeps digits that float32 would lose) with
    /// optional raw context rows; returns the fitted model and the report.
    let fit (options: DataFitOptions) (data: Tensor) (context: Tensor option) (model: Model) : Model * DataFitReport =
        let dim = Shape.numel model.Flow.Base.Event
        Guard.that (nameof data) (data.dim = 2 && data.shape[1] = dim) $"expected rows [n; {dim}], got shape {Shape.show data.shape}"
        let n = data.shape[0]
        Guard.that (nameof data) (n >= 2) $"needs at least 2 rows, got {n}"
        match context with
        | Some c ->
            Guard.that (nameof context) (model.ContextDim > 0) "the model is not conditional: pass no context"
            Guard.that (nameof context) (c.dim = 2 && c.shape[0] = n && c.shape[1] = model.ContextDim)
                $"expected context rows [{n}; {model.ContextDim}], got shape {Shape.show c.shape}"
        | None -> Guard.that (nameof context) (model.ContextDim = 0) $"the model is conditional: pass a context of {model.ContextDim} columns"
        let raw = data.cast Dtype.Float64
        checkColumns (nameof data) (raw.toArray64()) n dim
        let fitStandardisation (existing: Standardisation option) (rows: Tensor) =
            match existing with
            | None when options.Standardise -> Some(Standardisation.ofRows rows)
            | s -> s
        let model =
            { model with
                Standardisation = fitStandardisation model.Standardisation raw
                ContextStandardisation = context |> Option.bind (fun c -> fitStandardisation model.ContextStandardisation (c.cast Dtype.Float64)) }
        let standardise (s: Standardisation option) (t: Tensor) =
            let t = t.cast Dtype.Float64
            match s with
            | Some s -> Standardisation.apply s t
            | None -> t
        let x = standardise model.Standardisation raw
        let c = context |> Option.map (standardise model.ContextStandardisation)
        let warnings = model.Standardisation |> Option.map (precisionWarnings data) |> Option.defaultValue []
        // the split: seeded, by table size
        let held = validationRows options.ValidationFraction n
        Guard.that "ValidationFraction" (held = 0 || (held >= 1 && n - held >= 1)) $"{held} of {n} rows held out leaves none to train on"
        let order = (Generator(options.Seed ^^^ 0x5EEDUL)).permutation(n).toArrayInt()
        let trainIndex, heldIndex = order[held..], order[.. held - 1]
        let cTrain, cHeld = c |> Option.map (rows trainIndex), c |> Option.map (rows heldIndex)
        let nTrain = trainIndex.Length
        let capacity = TableCapacity.forTable nTrain dim
        let flowDtype, device = model.Flow.Base.Dtype, model.Flow.Base.Device
        let onModel (t: Tensor) = (t.cast flowDtype).moveTo device
        // The Gaussian floor: a fixed stage N(μ, LLᵀ) of the training rows (vector flows). Two layouts
        // are trained and the better on validation kept: the layers on rows whitened by the stage, which
        // sits over them (they start as that Gaussian), and the layers on the standardised columns
        // themselves (a whitening rotation can smear per-column structure such as counts). Then the
        // Gaussian is kept instead unless the flow beats it beyond noise. A fitted model keeps its stage.
        let core, existingStage =
            match List.rev model.Flow.Layers with
            | last :: before when last.Name = GaussianStage.name -> { model.Flow with Layers = List.rev before }, Some last
            | _ -> model.Flow, None
        let vector = model.Flow.Base.Event.Length = 1
        let floor = existingStage.IsSome || (options.GaussianFloor && vector)
        let stageFrom (rows: Tensor) =
            match existingStage with
            | Some s -> s, None
            | None ->
                let g = GaussianFit.ledoitWolf rows
                GaussianStage.create flowDtype g.Mean g.Cholesky |> Bijector.moveTo device, Some g
        let stage, gaussian = if floor then (let s, g = stageFrom (rows trainIndex x) in Some s, g) else None, None
        let layouts =
            match stage with
            | Some _ when existingStage.IsNone && model.Fitting = Fitting.MaximumLikelihood && held > 0 -> [ Layout.Whitened; Layout.Plain ]
            | Some _ -> [ Layout.Whitened ]
            | None -> [ Layout.Plain ]
        // rows as a layout's layers see them, in float64 (whitened: L⁻¹(x − μ)), with the log|det| to add
        let rowsFor (layout: Layout) (stage: Bijector option) (rows: Tensor) =
            match layout, stage with
            | Layout.Whitened, Some s ->
                let l = s.Buffers["cholesky"].moveTo(Device.Cpu).cast Dtype.Float64
                let mean = s.Buffers["mean"].moveTo(Device.Cpu).cast Dtype.Float64
                l.solveTriangular((rows - mean).transpose(), false).transpose(), l.diagonal().log().sum().toScalar()
            | _ -> rows, 0.0
        // the model from trained layers
        let complete (layout: Layout) (stage: Bijector option) (trained: Flow) =
            match layout, stage with
            | Layout.Whitened, Some s -> { trained with Layers = trained.Layers @ [ s ] }
            | _ -> trained
        let standardNormal = Distribution.moveTo device (Distribution.standardNormal [| dim |] flowDtype)
        let gaussianOnly (stage: Bijector) = Flow.create standardNormal [ stage ]
        // the schedule: epochs of the training rows, validation every epoch, patience in epochs
        let batch = min nTrain (defaultArg options.BatchSize capacity.BatchSize)
        let stepsPerEpoch = (nTrain + batch - 1) / batch
        let steps =
            options.Steps |> Option.defaultWith (fun () ->
                let epochSteps = Math.Ceiling(float (defaultArg options.MaxEpochs 1000) * float nTrain / float batch)
                if options.MaxEpochs.IsSome then int epochSteps else int (min 10000.0 epochSteps))
        let validateEvery = options.ValidateEvery |> Option.defaultValue (min stepsPerEpoch 250)
        let patienceEpochs = options.PatienceEpochs |> Option.defaultWith (fun () -> Math.Clamp(int (Math.Round(300.0 / float stepsPerEpoch)), 5, 30))
        let patienceChecks = max 1 (int (Math.Ceiling(float patienceEpochs * float stepsPerEpoch / float validateEvery)))
        // NLLs of the layers' rows become NLLs of the user's rows by adding the whitening's and the
        // standardisation's log-dets
        let standardOffset = model.Standardisation |> Option.map Standardisation.logScale |> Option.defaultValue 0.0
        // the training loss is an NLL (plus penalties) of the layers' rows, except flow matching's regression
        let likelihoodLoss = not model.Fitting.IsFlowMatching
        let joined (xs: Tensor) (cs: Tensor option) =
            match cs with
            | Some cs -> Tensor.cat([| onModel xs; onModel cs |], 1)
            | None -> onModel xs
        let objectiveOn (xs: Tensor) (cs: Tensor option) =
            let source =
                match cs with
                | Some cs -> DataSource.Conditional(onModel xs, onModel cs)
                | None -> DataSource.Dataset(onModel xs)
            match model.Fitting with
            | Fitting.MaximumLikelihood -> Objective.ForwardKl source
            | Fitting.FlowMatching sigmaMin -> FlowMatching.objective sigmaMin source
            | Fitting.Rnode(kinetic, jacobian, steer) -> CnfTraining.rnode { Kinetic = kinetic; Jacobian = jacobian } steer None None source
            | Fitting.OtFlow(transport, hjb) -> CnfTraining.otFlow { Transport = transport; Hjb = hjb } None None source
        let heldContext = match cHeld with Some cs -> Context.ofCondition (onModel cs) | None -> Context.none
        let heldNll (offset: float) (rows: Tensor) (f: Flow) =
            (Flow.logProb heldContext (onModel rows) f).toArray64() |> Array.map (fun lp -> offset - lp)
        let weightDecay = defaultArg options.WeightDecay capacity.WeightDecay
        let baseOptions =
            { TrainOptions.defaults with
                Steps = steps
                BatchSize = batch
                LearningRate = options.LearningRate
                Optimiser =
                    match options.Optimiser with
                    | Some optimiser -> Optimiser.withWeightDecay weightDecay optimiser
                    | None when weightDecay > 0.0 -> Optimiser.AdamW(0.9, 0.999, 1e-8, weightDecay)
                    | None -> Optimiser.adam
                Schedule = options.Schedule steps
                ClipNorm = options.ClipNorm
                Seed = options.Seed
                ValidateEvery = validateEvery
                Patience = (if held > 0 then Some patienceChecks else None)
                ReportEvery = options.ReportEvery
                ShouldStop = options.ShouldStop }
        let stepsBefore = ref 0
        let train (layout: Layout) =
            let xs, logDet = rowsFor layout stage x
            let offset = logDet + standardOffset
            let lossOffset = if likelihoodLoss then offset else 0.0
            let xTrain, xHeld = rows trainIndex xs, rows heldIndex xs
            let before = stepsBefore.Value
            let trainOptions =
                { baseOptions with
                    Validation = (if held > 0 then Some(joined xHeld cHeld) else None)
                    Progress =
                        options.Progress
                        |> Option.map (fun report p ->
                            report { p with Step = before + p.Step; TotalSteps = p.TotalSteps * layouts.Length; Loss = p.Loss + lossOffset; Validation = p.Validation |> Option.map ((+) offset) }) }
            let outcome = Train.fit trainOptions (objectiveOn xTrain cTrain) core
            let trained, report = Train.result outcome
            stepsBefore.Value <- before + report.StepsRun
            let report =
                { report with
                    Losses = report.Losses |> Array.map ((+) lossOffset)
                    Validations = report.Validations |> Array.map (fun (step, v) -> step, v + offset) }
            let nll = if held > 0 then Some(heldNll offset xHeld trained) else None
            let startIsGaussian =
                // only the whitened layout's layers start as the Gaussian (when they start as the identity)
                layout = Layout.Whitened && held > 0 && Array.forall (fun v -> abs v < 1e-4)
                    (Array.map2 (-) (heldNll offset xHeld core) (heldNll offset xHeld (Flow.create standardNormal [])))
            {| Layout = layout; Flow = trained; Report = report; Nll = nll; Diverged = outcome.IsDiverged; StartIsGaussian = startIsGaussian |}
        let runs = [ for layout in layouts do if not (options.ShouldStop |> Option.exists (fun stop -> stop ())) || layout = layouts.Head then train layout ]
        let meanOf (values: float[] option) = values |> Option.map Array.average |> Option.defaultValue infinity
        let best = runs |> List.minBy (fun r -> if Double.IsNaN(meanOf r.Nll) then infinity else meanOf r.Nll)
        let whitenedStart = runs |> List.exists (fun r -> r.StartIsGaussian)
        // the choice, on per-row validation NLLs in the user's units
        let flowNll = best.Nll
        let gaussianNll =
            match stage with
            | Some s when held > 0 -> Some(heldNll standardOffset (rows heldIndex x) (gaussianOnly s))
            | _ -> None
        let chosen =
            match flowNll, gaussianNll with
            | Some f, Some g ->
                // the flow must beat the Gaussian by two standard errors of the paired difference (early
                // stopping and the layout were chosen on these rows: an optimistic score)
                let difference, error = meanAndError (Array.map2 (-) f g)
                if Double.IsFinite difference && difference + 2.0 * error < 0.0 then ChosenModel.Flow else ChosenModel.Gaussian
            | _ -> ChosenModel.Flow
        // Layers that start as the identity keep their architecture when the Gaussian wins (the density
        // is then that Gaussian, and later fits can train them); other starts are replaced by it.
        let gaussianChoice (stage: Bijector) =
            if whitenedStart then complete Layout.Whitened (Some stage) core, model.Fitting
            else gaussianOnly stage, Fitting.MaximumLikelihood
        let chosenFlow, fitting =
            match chosen, stage with
            | ChosenModel.Gaussian, Some s -> gaussianChoice s
            | _ -> complete best.Layout stage best.Flow, model.Fitting
        // the held-out rows have done their work: fit the choice again on every row
        let refit = held > 0 && defaultArg options.RefitOnAllRows (n <= 5000) && not (options.ShouldStop |> Option.exists (fun stop -> stop ()))
        let refitted =
            let allStage = if floor then Some(fst (stageFrom x)) else None
            match refit, chosen, best.Report.BestStep, allStage with
            | false, _, _, _ -> None
            | true, ChosenModel.Gaussian, _, Some s -> Some(gaussianChoice s)
            | true, ChosenModel.Flow, Some bestStep, _ ->
                let again = { baseOptions with Steps = bestStep; Schedule = options.Schedule bestStep; Validation = None; Patience = None }
                match Train.fit again (objectiveOn (fst (rowsFor best.Layout allStage x)) c) core with
                | Converged(f, _) -> Some(complete best.Layout allStage f, model.Fitting)
                | Diverged _ -> None
            | _ -> None
        let chosenFlow, fitting = defaultArg refitted (chosenFlow, fitting)
        let mean = Option.map Array.average
        let layoutName = match best.Layout with Layout.Whitened -> "whitened" | Layout.Plain -> "standardised"
        let report =
            { Chosen = chosen
              TrainRows = nTrain
              ValidationRows = held
              ValidationNll = (match chosen with ChosenModel.Flow -> mean flowNll | ChosenModel.Gaussian -> mean gaussianNll)
              FlowValidationNll = mean flowNll
              GaussianValidationNll = mean gaussianNll
              Shrinkage = gaussian |> Option.map _.Shrinkage
              Training = { best.Report with Message = $"{best.Report.Message} (layers on {layoutName} columns)" }
              Refitted = refitted.IsSome
              Warnings = warnings }
        { model with Flow = chosenFlow; Fitting = fitting }, report

    /// The default fit of a table: `defaultFlow` sized by `TableCapacity.forTable` for the training
    /// rows, fitted by `fit`.
    let fitTable (options: DataFitOptions) (data: Tensor) : Model * DataFitReport =
        Guard.that (nameof data) (data.dim = 2 && data.shape[0] >= 2) $"expected rows [n; d] with n ≥ 2, got shape {Shape.show data.shape}"
        let n, d = data.shape[0], data.shape[1]
        let capacity = TableCapacity.forTable (n - validationRows options.ValidationFraction n) d
        fit options data None (Model.ofFlow 0 (defaultFlow capacity d 0 options.Seed))
