namespace Flows.Continuous

open Flows
open Flows.Ode
open Flows.Tensors
open Flows.Training

/// `Train.fit` objectives for regularised continuous flows, so that validation, early stopping and
/// the divergence guard apply to them as to any flow: RNODE (with optional STEER end times) on a
/// flow of one CNF layer, and OT-Flow on a flow of one OT-Flow layer. Each step integrates the data
/// batch back to the base with its regularisers in the same solve; validation scores the plain NLL.
[<RequireQualifiedAccess>]
module CnfTraining =

    // The single layer of a flow, checked by name.
    let private onlyLayer (name: string) (maker: string) (flow: Flow) =
        match flow.Layers with
        | [ b ] when b.Name = name -> b
        | layers ->
            let names = layers |> List.map _.Name |> String.concat "; "
            invalidArg (nameof flow) $"expected a flow of one '{name}' layer ({maker}), got layers [{names}]"

    /// RNODE's loss (`Regularisers.lossOf`) of data rows x for the flow at parameters `p`: the CNF
    /// layer's field, trace, gradient and tolerance; a Hutchinson probe and, with `steer = Some b`,
    /// the end time τ ~ U(T − b, T + b) drawn from `gen` (STEER); T otherwise.
    let rnodeLoss (weights: Regularisation) (steer: float option) (onSolve: (CnfSolve -> unit) option) (p: Params) (gen: Generator) (x: Tensor) (flow: Flow) : RegularisedLoss =
        let flow = Flow.withParameters p flow
        let layer = onlyLayer "cnf" "Cnf.createWith" flow
        let options = Cnf.optionsOf layer.Settings
        Guard.that (nameof flow) (options.ContextDim = 0) $"RNODE's regularised solve takes an unconditional CNF; this one reads a context of {options.ContextDim} features"
        let horizon =
            match steer with
            | Some halfWidth -> Horizon.Steer(options.EndTime, halfWidth)
            | None -> Horizon.Fixed options.EndTime
        let endTime = Horizon.draw gen horizon
        let mode =
            match options.Trace with
            | CnfTrace.Exact -> TraceMode.Exact
            | CnfTrace.Hutchinson(noise, _) -> TraceMode.Hutchinson(Trace.probe noise gen x)
        let solved =
            Regularisers.solveObserved (Cnf.observer onSolve endTime 0.0) (Cnf.solverFor x.dtype options.Tolerance) SolverOptions.defaults
                options.Gradient mode Cnf.dynamics layer.Params x endTime 0.0
        Regularisers.lossOf weights flow.Base solved

    /// RNODE for `Train.fit` on `source` (Finlay et al. 2020; STEER, Ghosh et al. 2020, with
    /// `steer = Some b`): minimises `rnodeLoss`, reporting each solve to `onSolve` and each step's
    /// loss and parts to `onLoss`. The flow must be one CNF layer (`Cnf.createWith`).
    let rnode (weights: Regularisation) (steer: float option) (onSolve: (CnfSolve -> unit) option) (onLoss: (RegularisedLoss -> unit) option) (source: DataSource) =
        Guard.that (nameof weights) (weights.Kinetic >= 0.0 && weights.Jacobian >= 0.0) $"λ_K and λ_J must be non-negative, got {weights.Kinetic} and {weights.Jacobian}"
        Objective.BatchLoss(source, fun p gen x flow ->
            let loss = rnodeLoss weights steer onSolve p gen x flow
            onLoss |> Option.iter (fun report -> report loss)
            loss.Loss)

    /// OT-Flow's loss (`OtFlow.objective`) of a data batch for the flow at parameters `p`, with the
    /// OT-Flow layer's end time, tolerance and gradient; a conditional layer's batch is [x | c], as a
    /// conditional data source batches it.
    let otFlowLoss (weights: OtFlowWeights) (onSolve: (CnfSolve -> unit) option) (p: Params) (batch: Tensor) (flow: Flow) : OtFlowLoss =
        let flow = Flow.withParameters p flow
        let layer = onlyLayer "ot-flow" "OtFlow.createWith" flow
        let options = OtFlow.optionsOf layer.Settings
        let dim = layer.Event[0]
        Guard.rows "batch" (dim + options.ContextDim) batch
        let ctx = if options.ContextDim = 0 then Context.none else Context.ofCondition (batch.narrow(1, dim, options.ContextDim))
        OtFlow.objectiveObserved (Cnf.observer onSolve 0.0 options.EndTime) options weights flow.Base layer.Params ctx (batch.narrow(1, 0, dim))

    /// OT-Flow for `Train.fit` on `source` (Onken et al. 2021): minimises `otFlowLoss`, reporting
    /// each solve to `onSolve` and each step's loss and parts to `onLoss`. The flow must be one
    /// OT-Flow layer (`OtFlow.createWith`).
    let otFlow (weights: OtFlowWeights) (onSolve: (CnfSolve -> unit) option) (onLoss: (OtFlowLoss -> unit) option) (source: DataSource) =
        Guard.that (nameof weights) (weights.Transport >= 0.0 && weights.Hjb >= 0.0) $"α_L and α_R must be non-negative, got {weights.Transport} and {weights.Hjb}"
        Objective.BatchLoss(source, fun p _ x flow ->
            let loss = otFlowLoss weights onSolve p x flow
            onLoss |> Option.iter (fun report -> report loss)
            loss.Loss)
