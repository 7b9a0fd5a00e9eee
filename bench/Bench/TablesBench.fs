/// Issue 13's `tables` section: does the library's default fit on a user's table beat a
/// full-covariance Gaussian? For every synthetic table (exact log-density known) it fits on the
/// table's training rows, scores an independent held-out draw, and prints per dimension in nats the
/// default fit's NLL, the Gaussian's, the truth's, and the share of the Gaussian's gap to the truth
/// that the default fit closes.
module TablesBench

open System.Diagnostics
open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Training
open Flows.Data
open Flows.Datasets
open Flows.Tensors

let private toArray2D (x: Tensor) =
    let d = x.shape[1]
    let v = x.cast(Dtype.Float64).toArray64()
    Array2D.init x.shape[0] d (fun i j -> v[i * d + j])

/// The library's default table fit (`DataFit.fitTable`, what `flows train` runs): a scorer of raw rows
/// (log p per row, nats) and the model it chose.
let fitDefault (train: Tensor) : (Tensor -> float[]) * string =
    let model, report = DataFit.fitTable DataFit.defaults train
    let layers = model.Flow.Layers |> List.filter (fun b -> b.Name.EndsWith "coupling") |> List.length
    let chosen = match report.Chosen with ChosenModel.Flow -> $"flow ({layers} coupling layers)" | ChosenModel.Gaussian -> "gaussian"
    let validation = report.ValidationNll |> Option.map (fun v -> $"{v:F3}") |> Option.defaultValue "-"
    (fun x -> (Model.logProb Context.none x model).cast(Dtype.Float64).toArray64()),
    $"default fit chose the {chosen}, {report.Training.StepsRun} steps ({report.Training.Message}), validation NLL {validation} nats/row, refitted {report.Refitted}"

/// Full-covariance Gaussian by maximum likelihood with Ledoit–Wolf shrinkage (Ledoit & Wolf 2004,
/// "A well-conditioned estimator for large-dimensional covariance matrices"), fitted on standardised
/// columns (so that the target μI, μ = tr S/d = 1, is the identity and no column's units dominate the
/// shrinkage): Σ̂ = (β²/δ²)·μI + (1 − β²/δ²)·S with δ² = ‖S − μI‖², β² = min(δ², n⁻² Σₖ ‖zₖzₖᵀ − S‖²)
/// (‖·‖² = tr(AAᵀ)/d). Returns the log-density of raw rows: log N(z; 0, Σ̂) − Σⱼ log sⱼ.
let gaussian (train: Tensor) : Tensor -> float[] =
    let x = toArray2D train
    let n, d = Array2D.length1 x, Array2D.length2 x
    let mean = Array.init d (fun j -> Seq.averageBy (fun i -> x[i, j]) (seq { 0 .. n - 1 }))
    let scale = Array.init d (fun j -> sqrt (Seq.averageBy (fun i -> (x[i, j] - mean[j]) ** 2.0) (seq { 0 .. n - 1 })))
    let z = Matrix<float>.Build.Dense(n, d, fun i j -> (x[i, j] - mean[j]) / scale[j])
    let s = z.TransposeThisAndMultiply z / float n
    let mu = s.Trace() / float d
    let target = Matrix<float>.Build.DenseIdentity d * mu
    let norm2 (a: Matrix<float>) = a.FrobeniusNorm() ** 2.0 / float d
    let delta2 = norm2 (s - target)
    // ‖zzᵀ − S‖² = (zᵀz)² − 2 zᵀSz + ‖S‖², summed over rows without forming zzᵀ
    let sz = z * s
    let s2 = s.FrobeniusNorm() ** 2.0
    let beta2Bar =
        Seq.sum (seq { for i in 0 .. n - 1 -> (z.Row(i) * z.Row(i)) ** 2.0 - 2.0 * (z.Row(i) * sz.Row(i)) + s2 })
        / float d / float n / float n
    let shrink = if delta2 > 0.0 then min beta2Bar delta2 / delta2 else 1.0
    let cholesky = (target * shrink + s * (1.0 - shrink)).Cholesky()
    let logScale = Array.sumBy log scale
    let constant = -0.5 * float d * log (2.0 * System.Math.PI) - 0.5 * cholesky.DeterminantLn - logScale
    fun (rows: Tensor) ->
        let h = toArray2D rows
        let m = Array2D.length1 h
        let zh = Matrix<float>.Build.Dense(d, m, fun j i -> (h[i, j] - mean[j]) / scale[j])
        let solved = cholesky.Solve zh
        Array.init m (fun i -> constant - 0.5 * (zh.Column(i) * solved.Column(i)))

// Held-out rows per table: enough that the NLLs' standard errors sit well below the gaps compared.
let private heldOutRows (table: SyntheticTable) = if table.Columns >= 13 then 5000 else 20000

let private negativeMeanPerDimension (d: int) (logP: float[]) = -(Array.average logP) / float d

/// Prints, per table, NLLs per dimension (nats) of the default fit, the Gaussian and the truth on
/// held-out rows, the gap closed, and the default fit's seconds; the chosen model as a `#` line.
let run () =
    SyntheticTables.all
    |> List.iteri (fun index table ->
        let name = $"tables.{table.Name}"
        let d = table.Columns
        let train = table.Sample (Generator(1000UL + uint64 index)) table.Rows
        let heldOut = table.Sample (Generator(2000UL + uint64 index)) (heldOutRows table)
        let trueNll = negativeMeanPerDimension d (table.LogDensity heldOut)
        let gaussianNll = negativeMeanPerDimension d (gaussian train heldOut)
        let clock = Stopwatch.StartNew()
        let score, chosen = fitDefault train
        let seconds = clock.Elapsed.TotalSeconds
        let defaultNll = negativeMeanPerDimension d (score heldOut)
        Timing.comment $"{name}: {table.Rows} x {d} train rows, {heldOut.shape[0]} held out"
        Timing.report $"{name}.default_nll" defaultNll "nats/dim"
        Timing.report $"{name}.gaussian_nll" gaussianNll "nats/dim"
        Timing.report $"{name}.true_nll" trueNll "nats/dim"
        Timing.report $"{name}.gap_closed" ((gaussianNll - defaultNll) / (gaussianNll - trueNll)) "fraction"
        Timing.report $"{name}.seconds" seconds "s"
        Timing.comment $"{name}.model {chosen}")
