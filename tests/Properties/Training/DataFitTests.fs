/// The default data fit: the Ledoit–Wolf Gaussian against a direct computation with MathNet, the
/// Gaussian floor on Gaussian rows (no overfitting), a clear gain on non-Gaussian rows, refused
/// columns, and the training loop's guards (roll-back of a non-finite step, stop reasons).
module Flows.Properties.Training.DataFitTests

open System
open Xunit
open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Tensors
open Flows.Training

/// Correlated Gaussian rows: z·A + shift with a fixed random A.
let private gaussianRows (seed: uint64) (n: int) (d: int) =
    let a = (Generator 99UL).normal([| d; d |], 0.0, 0.6, Dtype.Float64) + Tensor.eye(d, Dtype.Float64)
    (Generator seed).normal([| n; d |], 0.0, 1.0, Dtype.Float64).matmul(a) + 3.0

let private meanNll (model: Model) (rows: Tensor) = -((Model.logProb Context.none rows model).cast(Dtype.Float64).mean().toScalar())

[<Fact>]
let ``Ledoit-Wolf shrinkage, covariance, factor and density match a direct computation`` () =
    let rows = gaussianRows 1UL 40 5
    let g = GaussianFit.ledoitWolf rows
    let x = Matrix<float>.Build.DenseOfRowArrays([| for i in 0 .. 39 -> (rows.narrow(0, i, 1).reshape [| 5 |]).toArray64() |])
    let mean = x.ColumnSums() / 40.0
    let centred = x - Matrix<float>.Build.DenseOfRowVectors(Array.create 40 mean)
    let s = centred.TransposeThisAndMultiply(centred) / 40.0
    let mu = s.Trace() / 5.0
    let identity = Matrix<float>.Build.DenseIdentity 5
    let delta2 = (s - mu * identity).FrobeniusNorm() ** 2.0
    // β² summed term by term, not through the identity the library uses
    let beta2 =
        [ for k in 0 .. 39 -> (centred.Row(k).OuterProduct(centred.Row(k)) - s).FrobeniusNorm() ** 2.0 ] |> List.sum |> fun b -> b / 1600.0
    let shrinkage = min beta2 delta2 / delta2
    Assert.Equal(shrinkage, g.Shrinkage, 10)
    let expected = (1.0 - shrinkage) * s + shrinkage * mu * identity
    for a in 0 .. 4 do
        for b in 0 .. 4 do
            Assert.Equal(expected[a, b], g.Covariance[a, b], 10)
            Assert.Equal(expected.Cholesky().Factor[a, b], g.Cholesky[a, b], 10)
    let point = gaussianRows 2UL 3 5
    let logDensities = GaussianFit.logProb g point
    for i in 0 .. 2 do
        let v = Vector<float>.Build.DenseOfArray((point.narrow(0, i, 1).reshape [| 5 |]).toArray64()) - mean
        let direct = -0.5 * (v * expected.Inverse() * v) - 0.5 * log (expected.Determinant()) - 2.5 * log (2.0 * Math.PI)
        Assert.Equal(direct, logDensities[i], 9)

[<Fact>]
let ``A Gaussian stage on a standard normal base is the fitted Gaussian`` () =
    let rows = gaussianRows 3UL 60 4
    let g = GaussianFit.ledoitWolf rows
    let flow = Flow.create (Distribution.standardNormal [| 4 |] Dtype.Float64) [ GaussianStage.create Dtype.Float64 g.Mean g.Cholesky ]
    let probe = gaussianRows 4UL 10 4
    Assert.Equal<float[]>(GaussianFit.logProb g probe |> Array.map (fun v -> Math.Round(v, 9)), (Flow.logProb Context.none probe flow).toArray64() |> Array.map (fun v -> Math.Round(v, 9)))

[<Fact>]
let ``On few Gaussian rows the default fit is the Gaussian within noise`` () =
    let train, test = gaussianRows 5UL 150 6, gaussianRows 6UL 4000 6
    let model, report = DataFit.fitTable DataFit.defaults train
    let gaussian = GaussianFit.ledoitWolf train
    let fitted = (Model.logProb Context.none test model).cast(Dtype.Float64).toArray64()
    let difference = Array.map2 (fun a b -> b - a) fitted (GaussianFit.logProb gaussian test)
    let mean = Array.average difference
    let error = sqrt ((difference |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (difference.Length - 1) / float difference.Length)
    // NLL(default) − NLL(Gaussian) per row: no worse than noise (three standard errors and 0.01 nats per column)
    Assert.True(mean < 3.0 * error + 0.06, $"default is worse than the Gaussian by {mean} nats (standard error {error}); chose {report.Chosen}")
    Assert.True(report.ValidationRows >= 50, $"held out {report.ValidationRows} rows")

[<Fact>]
let ``On enough non-Gaussian rows the default fit is clearly better than the Gaussian`` () =
    let train, test = Toy.twoMoons (Generator 7UL) 1500 Dtype.Float64, Toy.twoMoons (Generator 8UL) 4000 Dtype.Float64
    let model, report = DataFit.fitTable DataFit.defaults train
    let gaussian = -(Array.average (GaussianFit.logProb (GaussianFit.ledoitWolf train) test))
    let fitted = meanNll model test
    Assert.Equal(ChosenModel.Flow, report.Chosen)
    Assert.True(fitted < gaussian - 1.0, $"default {fitted} nats against the Gaussian's {gaussian}")
    // the report's figures are in the data's units: the Gaussian's validation NLL is near its test NLL
    Assert.True(abs (report.GaussianValidationNll.Value - gaussian) < 0.2, $"validation {report.GaussianValidationNll.Value}, test {gaussian}")

[<Fact>]
let ``Constant and duplicate columns are refused naming the columns`` () =
    let rows = gaussianRows 9UL 30 3
    let constant = Tensor.cat([| rows.narrow(1, 0, 2); Tensor.full([| 30; 1 |], 5.0, Dtype.Float64) |], 1)
    let error = Assert.Throws<ArgumentException>(fun () -> DataFit.fitTable DataFit.defaults constant |> ignore)
    Assert.Contains("column 3 is constant", error.Message)
    let duplicate = Tensor.cat([| rows; rows.narrow(1, 1, 1) |], 1)
    let error = Assert.Throws<ArgumentException>(fun () -> DataFit.fitTable DataFit.defaults duplicate |> ignore)
    Assert.Contains("columns 2 and 4 are identical", error.Message)

[<Fact>]
let ``A step that turns the loss non-finite is rolled back and divergence keeps finite parameters`` () =
    // loss(w) = −5w + √(1.5 − w): the gradient drives w past 1.5, where the loss is NaN
    let flow = Flow.create (Distribution.standardNormal [| 1 |] Dtype.Float64) [ Elementwise.affine Dtype.Float64 1 ]
    let loss (p: Params) (_: Generator) (_: Tensor) (_: Flow) =
        let w = p.Values |> Array.map (fun t -> t.sum()) |> Array.reduce (+)
        w * -5.0 + (-w + 1.5).sqrt()
    let options = { TrainOptions.defaults with Steps = 200; LearningRate = 0.1; MaxBadSteps = 5 }
    let outcome = Train.fit options (Objective.BatchLoss(DataSource.Dataset(Tensor.zeros([| 8; 1 |], Dtype.Float64)), loss)) flow
    let kept, report = Train.result outcome
    Assert.True(outcome.IsDiverged)
    Assert.True((match report.Stop with StopReason.Diverged _ -> true | _ -> false), $"stop {report.Stop}")
    let keptLoss = (loss (Flow.parameters kept) (Generator 0UL) (Tensor.zeros [| 1 |]) kept).toScalar()
    Assert.True(Double.IsFinite keptLoss, $"the kept parameters give loss {keptLoss}")
    Assert.Equal(5, report.SkippedSteps)

[<Fact>]
let ``Early stopping reports the step it kept and a NaN validation is never the best`` () =
    let train = gaussianRows 10UL 400 2
    let flow = DataFit.defaultFlow (TableCapacity.forTable 400 2) 2 0 1UL
    let nanRows = Tensor.full([| 10; 2 |], nan, Dtype.Float32)
    let options = { TrainOptions.defaults with Steps = 30; Validation = Some nanRows; ValidateEvery = 5; Patience = Some 2 }
    let _, report = Train.result (Train.fit options (Objective.ForwardKl(DataSource.Dataset(train.cast Dtype.Float32))) flow)
    Assert.Equal(None, report.BestStep)
    Assert.Equal(StopReason.Completed, report.Stop)
    let options = { options with Steps = 2000; Validation = Some((gaussianRows 11UL 100 2).cast Dtype.Float32); LearningRate = 5e-2 }
    let _, report = Train.result (Train.fit options (Objective.ForwardKl(DataSource.Dataset(train.cast Dtype.Float32))) flow)
    match report.Stop, report.BestStep with
    | StopReason.EarlyStopped(at, best), Some kept ->
        Assert.Equal(best, kept)
        Assert.Equal(at, report.StepsRun)
        let bestNll = report.Validations |> Array.minBy snd
        Assert.Equal(fst bestNll, kept)
    | other -> failwith $"expected an early stop, got {other}"
