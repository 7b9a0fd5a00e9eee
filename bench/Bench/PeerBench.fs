/// Issue 18's `peer` section: the same training step here (`Train.fit`) and in TorchSharp 0.107
/// (bench/TorchSharpPeer), one run after the other, printed as `<name>.ours`,
/// `<name>.torchsharp_<k>_threads` and `<name>.ratio_<k>_threads` (ours over theirs). Workloads:
/// normflows' two-moons RealNVP (affine couplings with MLP [1, h, h, 2] conditioners, swaps, a learnable
/// diagonal Gaussian base, Adam 5e-4 with weight decay 1e-5; "all_in" draws fresh rows every step,
/// "fixed_batch" trains on one batch), an RQ-NSF and a MAF step on one 8-D batch (Adam 1e-3), and
/// CnfBench's HexagonCnf step (Dopri5, exact trace, adjoint) on one batch of 1024 from the same weights.
module PeerBench

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open Flows
open Flows.Bijectors
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Training

let private configurations = [ 2, 64, 512; 8, 256, 4096 ]

let private steps (batch: int) = if batch >= 4096 then 30 else 1000

/// A fit of the flow on the source for n steps, returning the last step's loss.
let fitter (options: TrainOptions) (source: DataSource) (flow: Flow) (n: int) =
    match Train.fit { options with Steps = n } (Objective.ForwardKl source) flow with
    | Converged(_, report)
    | Diverged(_, report) -> if report.Losses.Length = 0 then nan else Array.last report.Losses

/// It/s over about `seconds` of steps: a two-step warm-up, three timed steps to size the rest, a
/// quarter of the time as more warm-up, then the timed run (so one call covers tiny and huge steps).
let rateFor (seconds: float) (fit: int -> float) =
    let timed n =
        let clock = Stopwatch.StartNew()
        fit n |> ignore
        float n / clock.Elapsed.TotalSeconds
    fit 2 |> ignore
    let estimate = timed 3
    fit (max 1 (int (seconds / 4.0 * estimate))) |> ignore
    timed (Math.Clamp(int (seconds * estimate), 3, 100_000))

/// A Train.fit of normflows' two-moons RealNVP with `blocks` couplings of [1, hidden, hidden, 2].
let twoMoons (blocks: int) (hidden: int) (batch: int) (allIn: bool) =
    let g = Generator 1UL
    let layers =
        [ for _ in 1 .. blocks do
            Coupling.realNvp g Dtype.Float32 2 [ hidden; hidden ] (Coupling.Mask.Half false)
            Permute.swap 2 ]
    let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) layers
    let source =
        if allIn then DataSource.Sampler(fun gen n -> Toy.twoMoons gen n Dtype.Float32)
        else DataSource.Dataset(Toy.twoMoons (Generator 2UL) batch Dtype.Float32)
    fitter { TrainOptions.defaults with BatchSize = batch; LearningRate = 5e-4; Optimiser = Optimiser.Adam(0.9, 0.999, 1e-8, 1e-5) } source flow

// Our steps per second for one two-moons configuration, after a warm-up fit.
let private ours (blocks: int) (hidden: int) (batch: int) (allIn: bool) =
    let fit = twoMoons blocks hidden batch allIn
    fit (max 3 (steps batch / 10)) |> ignore
    let clock = Stopwatch.StartNew()
    fit (steps batch) |> ignore
    float (steps batch) / clock.Elapsed.TotalSeconds

/// The peer's program, built when the section runs (it restores LibTorch, which CI never does);
/// an incremental build, so a peer older than its sources is never timed.
let peerProgram () =
    let rec root (dir: DirectoryInfo) = if File.Exists(Path.Combine(dir.FullName, "Flows.sln")) then dir.FullName else root dir.Parent
    let project = Path.Combine(root (DirectoryInfo AppContext.BaseDirectory), "bench", "TorchSharpPeer")
    use build = Process.Start("dotnet", $"build \"{project}\" -c Release -v quiet")
    build.WaitForExit()
    if build.ExitCode <> 0 then failwith "bench/TorchSharpPeer did not build"
    Path.Combine(project, "bin", "Release", "net10.0", "TorchSharpPeer.dll")

/// Runs the peer with these arguments; `value suffix` is the number on its line whose name ends so.
let peer (dll: string) (arguments: string list) =
    let start = ProcessStartInfo("dotnet", RedirectStandardOutput = true)
    for a in dll :: arguments do
        start.ArgumentList.Add a
    use p = Process.Start start
    let lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    p.WaitForExit()
    fun (suffix: string) ->
        lines |> Array.tryPick (fun line ->
            match line.Split(' ') with
            | [| name; v; _ |] when name.EndsWith suffix -> Some(float v)
            | _ -> None)

/// Prints ours, theirs and the ratio for each thread count, or a comment where the peer printed nothing.
let compare (name: string) (mine: float) (theirs: (int * float option) list) =
    Timing.report $"{name}.ours" mine "it/s"
    for threads, figure in theirs do
        match figure with
        | Some v ->
            Timing.report $"{name}.torchsharp_{threads}_threads" v "it/s"
            Timing.report $"{name}.ratio_{threads}_threads" (mine / v) "x"
        | None -> Timing.comment $"{name}: the peer printed no figure with {threads} threads"

let private threadCounts = [ 1; Environment.ProcessorCount ]

let private twoMoonsSideBySide (dll: string) =
    for blocks, hidden, batch in configurations do
        let name = $"peer.two_moons.{blocks}x{hidden}.batch{batch}"
        let allIn, fixedBatch = ours blocks hidden batch true, ours blocks hidden batch false
        let peers =
            [ for threads in threadCounts ->
                threads, peer dll [ "--blocks"; string blocks; "--hidden"; string hidden; "--batch"; string batch; "--steps"; string (steps batch); "--threads"; string threads ] ]
        for kind, mine, suffix in [ "all_in", allIn, "torchsharp.all_in"; "fixed_batch", fixedBatch, "torchsharp.fixed_batch" ] do
            compare $"{name}.{kind}" mine [ for threads, value in peers -> threads, value suffix ]

// One batch of a Gaussian with a random covariance AᵀA (A with N(0, 1/d) entries), shared with the peer
// through a float32 file so that both sides score the same rows.
let private correlatedBatch (rows: int) (dim: int) =
    let g = Generator 3UL
    g.normal([| rows; dim |]).matmul(g.normal([| dim; dim |], std = 1.0 / sqrt (float dim)))

let private dim, rows, width = 8, 1024, 128

// The library's own layers, as a user would build the two flows: 8 blocks of a random permutation and an
// RQ coupling (8 bins on [−3, 3], MLP [4, 128, 128, 92], ReLU); 5 blocks of a reversal and an affine MADE.
let private flows =
    [ "nsf", "8x128", (fun g -> [ for _ in 1 .. 8 do
                                    Permute.random g dim
                                    SplineCoupling.neuralSpline g Dtype.Float32 dim [ width; width ] 8 3.0 (Coupling.Mask.Half false) ])
      "maf", "5x128", (fun g -> [ for _ in 1 .. 5 do
                                    Permute.reverse dim
                                    Autoregressive.maf g Dtype.Float32 dim [ width; width ] Order.Natural ]) ]

// The RQ spline of both sides at fixed inputs (the formulas of the peer's SplineCheck, bins 8 on [−3, 3]):
// weighted sums of values and log-dets, forward and inverse, to 1e-3 relative.
let private splineCheck (dll: string) =
    let rows, dim, bins = 256, 4, 8
    let v = Tensor.ofArray(Array.init (rows * dim) (fun i -> float32 (-4.5 + 9.0 * ((float i * 0.6180339887) % 1.0))), [| rows; dim |])
    let raw = Tensor.ofArray(Array.init (rows * dim * (3 * bins - 1)) (fun j -> float32 (2.0 * sin (0.7 * float j + 0.3))), [| rows; dim; 3 * bins - 1 |])
    let weights = Array.init (rows * dim) (fun i -> float (float32 (cos (float i))))
    let weighted (t: Tensor) = Array.fold2 (fun acc w x -> acc + w * x) 0.0 weights (t.toArray64())
    let spline = Flows.Transformers.SplineKind.transformer bins 3.0 Flows.Transformers.SplineKind.RationalQuadratic
    let theirs = peer dll [ "--model"; "rq-check" ]
    for direction, map in [ "forward", Flows.Transformers.Transformer.forward spline; "inverse", Flows.Transformers.Transformer.inverse spline ] do
        let mapped, logDet = map v raw
        for part, mine in [ "values", weighted mapped; "log_det", weighted logDet ] do
            match theirs $"rq.{direction}.{part}" with
            | Some t ->
                let verdict = if abs (mine - t) <= 1e-3 * max 1.0 (abs t) then "within" else "NOT within"
                Timing.comment $"peer.rq_spline.{direction}: Σ cos(i)·{part} at fixed inputs, ours {mine:F6}, TorchSharp {t:F6}: {verdict} 1e-3"
            | None -> Timing.comment $"peer.rq_spline.{direction}: the peer printed no {part}"

let private flowSteps (dll: string) =
    splineCheck dll
    let x = correlatedBatch rows dim
    let data = Path.Combine(Path.GetTempPath(), $"flows-peer-{Environment.ProcessId}.f32")
    File.WriteAllBytes(data, MemoryMarshal.AsBytes(ReadOnlySpan(x.toArray32())).ToArray())
    try
        for model, shape, layers in flows do
            let flow = Flow.create (Distribution.standardNormal [| dim |] Dtype.Float32) (layers (Generator 1UL))
            let initial = -((Flow.logProb Context.none x flow).toArray64() |> Array.average)
            let fit = fitter { TrainOptions.defaults with BatchSize = rows; LearningRate = 1e-3 } (DataSource.Dataset x) flow
            let mutable last = nan
            let mine = rateFor 3.0 (fun n -> last <- fit n; last)
            let peers =
                [ for threads in threadCounts ->
                    threads, peer dll [ "--model"; model; "--data"; data; "--dim"; string dim; "--hidden"; string width; "--seconds"; "3"; "--threads"; string threads ] ]
            let name = $"peer.{model}.{shape}.batch{rows}.fixed_batch"
            compare name mine [ for threads, value in peers -> threads, value "torchsharp.fixed_batch" ]
            for threads, value in peers do
                match value "torchsharp.initial_nll" with
                | Some theirs ->
                    let verdict = if abs (initial - theirs) <= 1e-3 then "within" else "NOT within"
                    Timing.comment $"{name}: initial NLL on the same batch, ours {initial:F6}, TorchSharp ({threads} threads) {theirs:F6}: {verdict} 1e-3"
                | None -> Timing.comment $"{name}: the peer printed no initial NLL with {threads} threads"
            let theirsFinal = peers |> List.map (fun (threads, value) -> $"""{threads} threads {value "torchsharp.final_nll" |> Option.map (sprintf "%.4f") |> Option.defaultValue "?"}""")
            Timing.comment $"""{name}: NLL after the timed run (step counts differ), ours {last:F4}, TorchSharp {String.Join(", ", theirsFinal)}"""
    finally
        File.Delete data

let private cnfWarmup, cnfTimed = 3, 20

// Writes float32 values to a temporary file for the peer, which `use` deletes.
let private floatsFile (tag: string) (values: float32[]) =
    let path = Path.Combine(Path.GetTempPath(), $"flows-peer-{Environment.ProcessId}-{tag}.f32")
    File.WriteAllBytes(path, MemoryMarshal.AsBytes(ReadOnlySpan values).ToArray())
    { new IDisposable with member _.Dispose() = File.Delete path }, path

// CnfBench's flow, data and AdamW on the first 1024 of its rows, every step on that batch; the peer
// (HexagonCnf.cs) starts from our initial weights, passed in a file as the rows are. Both time the
// steps after the same warm-up and check the initial NLL and the forward solve's NFE against each other.
let private cnfStep (dll: string) =
    let x = (CnfBench.hexagonRows ()).narrow(0, 0, 1024)
    let forward, backward = ResizeArray<int>(), ResizeArray<int>()
    let flow = CnfBench.flow (fun s -> (if s.Pass = Flows.Continuous.SolvePass.Forward then forward else backward).Add s.Nfe)
    let initial = -((Flow.logProb Context.none x flow).toArray64() |> Array.average)
    let initialNfe = forward[0]
    forward.Clear()
    let ends = ResizeArray<float>()
    let options = { CnfBench.training with Steps = cnfWarmup + cnfTimed; ReportEvery = 1; Progress = Some(fun p -> ends.Add p.Seconds) }
    let last = fitter options (DataSource.Dataset x) flow (cnfWarmup + cnfTimed)
    let mine = float cnfTimed / (ends[ends.Count - 1] - ends[cnfWarmup - 1])
    let rowsFile, data = floatsFile "cnf-rows" (x.toArray32())
    let weightsFile, weights = floatsFile "cnf-weights" (flow.Layers.Head.Params.Values |> Array.collect _.toArray32())
    use _ = rowsFile
    use _ = weightsFile
    let peers =
        [ for threads in threadCounts ->
            threads, peer dll [ "--model"; "cnf"; "--data"; data; "--weights"; weights; "--steps"; string cnfTimed; "--threads"; string threads ] ]
    let name = $"peer.{CnfBench.name}.fixed_batch"
    compare name mine [ for threads, value in peers -> threads, value "torchsharp.fixed_batch" ]
    let mean (counts: ResizeArray<int>) = Seq.averageBy float counts
    let show (v: float option) = v |> Option.map string |> Option.defaultValue "?"
    for threads, value in peers do
        match value "torchsharp.initial_nll" with
        | Some theirs ->
            let relative = abs (initial - theirs) / abs theirs
            let verdict = if relative <= 1e-4 then "within" else "NOT within"
            Timing.comment $"""{name}: initial NLL on the same batch, ours {initial:F6}, TorchSharp ({threads} threads) {theirs:F6}, relative {relative:E1}: {verdict} 1e-4; forward NFE ours {initialNfe}, TorchSharp {show (value "torchsharp.initial_nfe_forward")}"""
        | None -> Timing.comment $"{name}: the peer printed no initial NLL with {threads} threads"
        Timing.comment $"""{name}: over the {cnfWarmup + cnfTimed} steps, mean NFE forward / backward ours {mean forward:F1} / {mean backward:F1}, TorchSharp ({threads} threads) {show (value "torchsharp.nfe_forward")} / {show (value "torchsharp.nfe_backward")}; final NLL ours {last:F4}, TorchSharp {show (value "torchsharp.final_nll")}"""

/// The section: two-moons, then the RQ-NSF, MAF and CNF steps.
let run () =
    let dll = peerProgram ()
    twoMoonsSideBySide dll
    flowSteps dll
    cnfStep dll

/// The RQ-NSF and MAF steps alone (`peer-flows`).
let runFlows () = flowSteps (peerProgram ())

/// The CNF step alone (`peer-cnf`).
let runCnf () = cnfStep (peerProgram ())
