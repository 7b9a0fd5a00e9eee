/// Issue 18's `peer` section: normflows' two-moons configuration (affine couplings with MLP [1, h, h, 2]
/// conditioners, swaps, a learnable diagonal Gaussian base, Adam 5e-4 with weight decay 1e-5) trained
/// by `Train.fit` here and by TorchSharp 0.107 in bench/TorchSharpPeer, one run after the other, printed
/// as `<name>.ours`, `<name>.torchsharp` and `<name>.ratio` (ours over theirs). "all_in" draws fresh
/// rows every step; "fixed_batch" trains on one batch, so that only the step is timed.
module PeerBench

open System
open System.Diagnostics
open System.IO
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Tensors
open Flows.Training

let private configurations = [ 2, 64, 512; 8, 256, 4096 ]

let private steps (batch: int) = if batch >= 4096 then 30 else 1000

// Our steps per second for one configuration, after a warm-up fit.
let private ours (blocks: int) (hidden: int) (batch: int) (allIn: bool) =
    let g = Generator 1UL
    let layers =
        [ for _ in 1 .. blocks do
            Coupling.realNvp g Dtype.Float32 2 [ hidden; hidden ] (Coupling.Mask.Half false)
            Permute.swap 2 ]
    let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) layers
    let source =
        if allIn then DataSource.Sampler(fun gen n -> Toy.twoMoons gen n Dtype.Float32)
        else DataSource.Dataset(Toy.twoMoons (Generator 2UL) batch Dtype.Float32)
    let options n = { TrainOptions.defaults with Steps = n; BatchSize = batch; LearningRate = 5e-4; Optimiser = Optimiser.Adam(0.9, 0.999, 1e-8, 1e-5) }
    Train.fit (options (max 3 (steps batch / 10))) (Objective.ForwardKl source) flow |> ignore
    let clock = Stopwatch.StartNew()
    Train.fit (options (steps batch)) (Objective.ForwardKl source) flow |> ignore
    float (steps batch) / clock.Elapsed.TotalSeconds

// The peer's program, built on first use (it restores LibTorch, which CI never does).
let private peerProgram () =
    let rec root (dir: DirectoryInfo) = if File.Exists(Path.Combine(dir.FullName, "Flows.sln")) then dir.FullName else root dir.Parent
    let project = Path.Combine(root (DirectoryInfo AppContext.BaseDirectory), "bench", "TorchSharpPeer")
    let dll = Path.Combine(project, "bin", "Release", "net10.0", "TorchSharpPeer.dll")
    if not (File.Exists dll) then
        use build = Process.Start("dotnet", $"build \"{project}\" -c Release -v quiet")
        build.WaitForExit()
        if build.ExitCode <> 0 then failwith "bench/TorchSharpPeer did not build"
    dll

// The peer's `name value unit` lines for one configuration.
let private theirs (dll: string) (blocks: int) (hidden: int) (batch: int) (threads: int) =
    let start = ProcessStartInfo("dotnet", RedirectStandardOutput = true)
    for a in [ dll; "--blocks"; string blocks; "--hidden"; string hidden; "--batch"; string batch; "--steps"; string (steps batch); "--threads"; string threads ] do
        start.ArgumentList.Add a
    use p = Process.Start start
    let lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
    p.WaitForExit()
    let value (suffix: string) =
        lines |> Array.tryPick (fun line ->
            match line.Split(' ') with
            | [| name; v; _ |] when name.EndsWith suffix -> Some(float v)
            | _ -> None)
    value "torchsharp.all_in", value "torchsharp.fixed_batch"

/// The section.
let run () =
    let dll = peerProgram ()
    for blocks, hidden, batch in configurations do
        let name = $"peer.two_moons.{blocks}x{hidden}.batch{batch}"
        let allIn, fixedBatch = ours blocks hidden batch true, ours blocks hidden batch false
        let peers = [ for threads in [ 1; Environment.ProcessorCount ] -> threads, theirs dll blocks hidden batch threads ]
        for kind, mine, pick in [ "all_in", allIn, fst; "fixed_batch", fixedBatch, snd ] do
            Timing.report $"{name}.{kind}.ours" mine "it/s"
            for threads, figures in peers do
                match pick figures with
                | Some v ->
                    Timing.report $"{name}.{kind}.torchsharp_{threads}_threads" v "it/s"
                    Timing.report $"{name}.{kind}.ratio_{threads}_threads" (mine / v) "x"
                | None -> Timing.comment $"{name}.{kind}: the peer printed no figure with {threads} threads"
