/// The laws of batch norm in a training pass (Context.training), where the inverse normalises with
/// the batch's own mean and variance. The map of a batch then depends on the whole batch, and the
/// full-batch map is singular (its rows sum to B·β), so the only log-det it can promise is that of
/// the per-row map with the batch statistics held fixed (RealNVP, Dinh et al. 2017, §3.7).
module Flows.Properties.Bijectors.BatchNormTrainingLaws

open Xunit
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Statistics
open Flows
open Flows.Bijectors
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// A random batch-norm layer with momentum `momentum` and a data-side batch of at least two rows.
let private drawCase (momentum: float) (seed: int) =
    let case = LawCase.build (Flows.Fixtures.Library.find "batchnorm") seed 32
    let b = { BatchNorm.create momentum Dtype.Float64 case.Dim with Params = case.Bijector.Params }
    b, Tensor.cat([| case.Y; case.X * 2.0 + 1.0 |], 0)

/// The batch's mean and population variance per column, by MathNet.
let private batchStatistics (y: Tensor) =
    let rows, d = y.shape[0], y.shape[1]
    let values = y.toArray64()
    let column j = Array.init rows (fun i -> values[i * d + j])
    let mean = Array.init d (fun j -> Statistics.Mean(column j))
    let var = Array.init d (fun j -> Statistics.PopulationVariance(column j))
    Tensor.ofArray(mean, [| d |]), Tensor.ofArray(var, [| d |])

/// The layer with its running statistics replaced by the batch's: the map with them held fixed.
let private frozenAt (y: Tensor) (b: Bijector) =
    let mean, var = batchStatistics y
    { b with Buffers = Params.ofList [ "runningMean", mean; "runningVar", var ] }

let private check (count: int) (law: int -> unit) = Gens.check count (Gen.choose (0, System.Int32.MaxValue)) law

[<Fact>]
let ``a training pass normalises with the batch's own statistics`` () =
    check 20 (fun seed ->
        let b, y = drawCase 0.1 seed
        let z, _ = Bijector.inverse Context.training y b
        let expected, _ = Bijector.inverse Context.none y (frozenAt y b)
        Close.tensors "training-mode output" Tolerance.float64 expected z)

[<Fact>]
let ``a training pass's per-row log-det is the log|det| of the Jacobian with the statistics held fixed`` () =
    check 20 (fun seed ->
        let b, y = drawCase 0.1 seed
        let _, logDet = Bijector.inverse Context.training y b
        let frozen = frozenAt y b
        let expected = Reference.logAbsDetJacobian (fun y -> fst (Bijector.inverse Context.none y frozen)) y
        Close.arrays "training-mode log-det" { Abs = 1e-9; Rel = 1e-9 } expected (logDet.toArray64()))

[<Fact>]
let ``the full-batch training map is singular, so no full-batch log-det is promised`` () =
    check 10 (fun seed ->
        let b, y = drawCase 0.1 seed
        let n = y.numel
        let flat (v: Tensor) = (fst (Bijector.inverse Context.training (v.reshape y.shape) b)).reshape [| n |]
        let j = (Ad.jacobian flat (y.reshape [| n |])).toArray64()
        let s = Matrix<float>.Build.Dense(n, n, fun r c -> j[r * n + c]).Svd(false).S
        let ratio = s[n - 1] / s[0]
        if not (ratio < 1e-10) then failwith $"seed {seed}: smallest/largest singular value {ratio} of the full-batch Jacobian")

[<Fact>]
let ``forward undoes a training pass once Observe has copied the batch statistics`` () =
    check 20 (fun seed ->
        // momentum 1: the running statistics become the batch's
        let b, y = drawCase 1.0 seed
        let z, inverseLogDet = Bijector.inverse Context.training y b
        let p, buffers = b.Observe.Value b.Params b.Buffers Context.training y
        let observed = { b with Params = p; Buffers = buffers }
        let y', forwardLogDet = Bijector.forward Context.training z observed
        Close.tensors "forward(training inverse(y))" { Abs = 1e-9; Rel = 1e-8 } y y'
        Close.tensors "log-dets" { Abs = 1e-9; Rel = 1e-9 } (-inverseLogDet) forwardLogDet)

[<Fact>]
let ``a training pass on a single row uses the running statistics and round trips`` () =
    check 20 (fun seed ->
        let b, y = drawCase 0.1 seed
        let b = { b with Buffers = Params.ofList [ "runningMean", y.mean(0) + 0.3; "runningVar", y.var(0) + 0.5 ] }
        let row = y.narrow(0, 0, 1)
        let z, inverseLogDet = Bijector.inverse Context.training row b
        let expected, expectedLogDet = Bijector.inverse Context.none row b
        Close.tensors "single-row training output" Tolerance.float64 expected z
        Close.tensors "single-row training log-det" Tolerance.float64 expectedLogDet inverseLogDet
        let row', _ = Bijector.forward Context.training z b
        Close.tensors "forward(training inverse(row))" { Abs = 1e-9; Rel = 1e-8 } row row')
