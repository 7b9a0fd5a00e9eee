/// Regularised continuous flows trained through Train.fit: a short RNODE run (with STEER end times
/// and validation) and a short OT-Flow run each lower their regularised loss on a fixed batch, and
/// the loss's NLL part equals the trained flow's −mean Flow.logProb on that batch, solved again at a
/// tighter tolerance; a flow of the wrong layers is rejected by name.
module Flows.Properties.Continuous.CnfTrainingTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Continuous
open Flows.Distributions
open Flows.Tensors
open Flows.Training
open Flows.Laws
open Flows.Properties.Support

// 64 rows of a shifted, squeezed Gaussian: a standard normal base fits them badly at the start.
let private data (g: Generator) = Draw.normal g [| 64; 2 |] * 0.5 + Tensor.ofArray([| 1.0; -0.5 |], [| 1; 2 |])

let private options = { TrainOptions.defaults with Steps = 12; BatchSize = 64; LearningRate = 1e-2 }

let private meanNll (flow: Flow) (x: Tensor) = -((Flow.logProb Context.none x flow).mean().toScalar())

// The trained parameters in the same layer made at a tighter tolerance: an independent solve.
let private tightened (rebuild: Generator -> Bijector) (trained: Flow) =
    Flow.withParameters (Flow.parameters trained) { trained with Layers = [ rebuild (Generator 0UL) ] }

[<Fact>]
let ``Train.fit with the RNODE objective under STEER lowers the regularised loss and its NLL part is the trained flow's log-density`` () =
    Gens.check 1 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let x = data g
        let cnfOptions = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-6 }
        let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ Cnf.createWith cnfOptions g Dtype.Float64 2 ]
        let weights = { Kinetic = 0.01; Jacobian = 0.01 }
        let lossAt (flow: Flow) = CnfTraining.rnodeLoss weights None None (Flow.parameters flow) (Generator 0UL) x flow
        let objective = CnfTraining.rnode weights (Some 0.2) None None (DataSource.Dataset x)
        let trained, report = Train.fit { options with Validation = Some x; ValidateEvery = 4 } objective flow |> Train.result
        let before, after = lossAt flow, lossAt trained
        if not (after.Loss.toScalar() < before.Loss.toScalar()) then failwith $"the regularised loss rose from {before.Loss.toScalar()} to {after.Loss.toScalar()}"
        let exact = tightened (fun g -> Cnf.createWith { cnfOptions with Tolerance = 1e-10 } g Dtype.Float64 2) trained
        Close.scalar "NLL part = −mean log p" { Abs = 1e-5; Rel = 0.0 } (meanNll exact x) (after.Nll.toScalar())
        Close.scalar "loss = NLL + λ_K·K + λ_J·J" Tolerance.float64 (after.Nll.toScalar() + 0.01 * after.Kinetic.toScalar() + 0.01 * after.Jacobian.toScalar()) (after.Loss.toScalar())
        // validation ran and kept its best flow
        Assert.Equal(3, report.Validations.Length)
        Close.scalar "best validation NLL" { Abs = 1e-12; Rel = 0.0 } (meanNll trained x) (report.Validations |> Array.map snd |> Array.min))

[<Fact>]
let ``Train.fit with the OT-Flow objective lowers the regularised loss and its NLL part is the trained flow's log-density`` () =
    Gens.check 1 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let x = data g
        let otOptions = { OtFlow.defaults with Width = 8; Rank = 2; Tolerance = 1e-6 }
        let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ OtFlow.createWith otOptions g Dtype.Float64 2 ]
        let weights = { Transport = 0.01; Hjb = 0.05 }
        let lossAt (flow: Flow) = CnfTraining.otFlowLoss weights None (Flow.parameters flow) x flow
        let mutable steps = 0
        let objective = CnfTraining.otFlow weights None (Some(fun _ -> steps <- steps + 1)) (DataSource.Dataset x)
        let trained, report = Train.fit options objective flow |> Train.result
        let before, after = lossAt flow, lossAt trained
        if not (after.Loss.toScalar() < before.Loss.toScalar()) then failwith $"the regularised loss rose from {before.Loss.toScalar()} to {after.Loss.toScalar()}"
        let exact = tightened (fun g -> OtFlow.createWith { otOptions with Tolerance = 1e-10 } g Dtype.Float64 2) trained
        Close.scalar "NLL part = −mean log p" { Abs = 1e-5; Rel = 0.0 } (meanNll exact x) (after.Nll.toScalar())
        Assert.Equal(report.StepsRun, steps))

[<Fact>]
let ``the RNODE objective names the layer it needs when the flow has another`` () =
    let g = Generator 1UL
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ OtFlow.createWith OtFlow.defaults g Dtype.Float64 2 ]
    let error = Assert.ThrowsAny<System.ArgumentException>(fun () -> CnfTraining.rnodeLoss { Kinetic = 0.01; Jacobian = 0.01 } None None (Flow.parameters flow) g (data g) flow |> ignore)
    Assert.Contains("one 'cnf' layer", error.Message)
