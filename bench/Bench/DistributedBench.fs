/// Issue 17's `distributed` section: data-parallel training under `mpirun -np 1` and `-np 2` on a
/// generated 1,000,000-row table with the same global batch: steps per second, communication time
/// per step, time to a validation NLL, and the scaling efficiency. The section launches mpirun on
/// this program's hidden `distributed-rank` section, which is one rank's work.
module DistributedBench

open System
open System.Diagnostics
open System.IO
open Flows
open Flows.Bijectors
open Flows.Distributed
open Flows.Distributions
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Training

let private rows = 1_000_000
let private heldOut = 20_000
let private globalBatch = 1024
let private steps = 600
let private target = 1.35

// Row i of the table, made from i alone (so a rank makes only its rows): two moons with noise.
let private row (i: int) =
    let uniform (k: uint64) = float (Counter.bits 23UL (uint64 i * 8UL + k) >>> 11) / float (1UL <<< 53)
    let t = Math.PI * uniform 0UL
    let upper = uniform 1UL < 0.5
    let normal (k: uint64) = sqrt (-2.0 * log (1.0 - uniform k)) * cos (2.0 * Math.PI * uniform (k + 1UL))
    let x, y = if upper then cos t, sin t else 1.0 - cos t, 0.5 - sin t
    [| x + 0.1 * normal 2UL; y + 0.1 * normal 4UL |]

let private table (indices: int seq) =
    let values = indices |> Seq.collect row |> Array.ofSeq
    Tensor.ofArray(values, [| values.Length / 2; 2 |]).cast Dtype.Float32

// The collective with the seconds spent in its sums.
type private Timed(inner: ICollective) =
    member val Seconds = 0.0 with get, set
    interface ICollective with
        member _.Rank = inner.Rank
        member _.Size = inner.Size
        member this.SumInPlace values =
            let start = Stopwatch.GetTimestamp()
            inner.SumInPlace values
            this.Seconds <- this.Seconds + Stopwatch.GetElapsedTime(start).TotalSeconds
        member _.Broadcast values = inner.Broadcast values

/// One rank: its shard of the training rows (global rows heldOut.., every size-th) and of the
/// validation rows, a RealNVP of 4 couplings [64, 64], Adam 1e-3, `steps` steps of the global batch.
let rank () =
    Mpi.Run(fun world ->
        let collective = Timed(world)
        let r, n = world.Rank, world.Size
        let train = table (seq { for i in r .. n .. rows - 1 -> heldOut + i })
        let validation = table (seq { for i in r .. n .. heldOut - 1 -> i })
        let g = Generator 5UL
        let layers = [ for i in 0 .. 3 -> Coupling.realNvp g Dtype.Float32 2 [ 64; 64 ] (Coupling.Mask.Half(i % 2 = 1)) ]
        let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float32) layers
        let clock = Stopwatch.StartNew()
        let mutable reached = None
        let options =
            { TrainOptions.defaults with
                Steps = steps
                BatchSize = globalBatch
                Seed = 1UL
                Validation = Some validation
                ValidateEvery = 50
                ReportEvery = 50
                Collective = collective
                Progress =
                    Some(fun p ->
                        match p.Validation, reached with
                        | Some v, None when v <= target -> reached <- Some clock.Elapsed.TotalSeconds
                        | _ -> ()) }
        let _, report = Train.result (Train.fit options (Objective.ForwardKl(DataSource.Sharded(train, None, rows))) flow)
        let seconds = clock.Elapsed.TotalSeconds
        if r = 0 then
            let name = $"distributed.np{n}"
            Timing.report $"{name}.steps_per_second" (float report.StepsRun / seconds) "it/s"
            Timing.report $"{name}.communication_per_step" (1000.0 * collective.Seconds / float report.StepsRun) "ms"
            Timing.report $"{name}.final_validation_nll" (snd report.Validations[report.Validations.Length - 1]) "nats"
            match reached with
            | Some t -> Timing.report $"{name}.seconds_to_validation_nll_{target}" t "s"
            | None -> Timing.comment $"{name} did not reach validation NLL {target} in {steps} steps"
        0)

// Runs `mpirun -np ranks` on this program's rank section and returns rank 0's result lines.
let private launch (ranks: int) =
    let start = ProcessStartInfo("mpirun", RedirectStandardOutput = true, RedirectStandardError = true)
    let self = Path.Combine(AppContext.BaseDirectory, "Bench.dll")
    for a in [ "--allow-run-as-root"; "--oversubscribe"; "--bind-to"; "none"; "-np"; string ranks; "dotnet"; self; "distributed-rank" ] do
        start.ArgumentList.Add a
    // one BLAS thread per rank when two ranks share the two cores
    start.Environment["OPENBLAS_NUM_THREADS"] <- string (max 1 (Environment.ProcessorCount / ranks))
    // no terminal control sequences in the relayed lines
    start.Environment["TERM"] <- "dumb"
    use p = Process.Start start
    let output = p.StandardOutput.ReadToEnd()
    let error = p.StandardError.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then failwith $"mpirun -np {ranks} failed ({p.ExitCode}): {error}"
    output.Split('\n') |> Array.choose (fun line ->
        match line.IndexOf "distributed." with
        | -1 -> None
        | at -> Some(line.Substring(at).Trim()))

let private valueOf (lines: string[]) (name: string) =
    lines |> Array.tryPick (fun line ->
        match line.Split(' ') with
        | [| n; v; _ |] when n = name -> Some(float v)
        | _ -> None)

/// The section: np = 1 and 2, and the scaling efficiency (speed-up over the number of ranks).
let run () =
    Timing.comment $"distributed: {rows} rows, global batch {globalBatch}, {steps} steps, RealNVP 4 x [64, 64], {Environment.ProcessorCount} cores"
    let one = launch 1
    let two = launch 2
    for line in Array.append one two do printfn "%s" line
    match valueOf one "distributed.np1.steps_per_second", valueOf two "distributed.np2.steps_per_second" with
    | Some a, Some b ->
        Timing.report "distributed.speedup_np2" (b / a) "x"
        Timing.report "distributed.scaling_efficiency_np2" (100.0 * b / a / 2.0) "%"
    | _ -> Timing.comment "distributed: a run printed no speed"
