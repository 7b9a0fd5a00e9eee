/// One rank of a data-parallel training run for the distributed tests: a generated table of `--rows`
/// rows (the same on every rank), this rank's shard of it, a small RealNVP trained by Train.fit on the
/// world communicator. Rank 0 writes the step losses and validation NLLs to `--out`/losses.txt and the
/// model to `--out`/model. `--fail-rank r --fail-step k` makes rank r throw at step k; `--kill` makes it
/// end its process there instead, as a crash would. `--facade` trains through the C# façade's
/// `DensityModel.FitShard` instead and writes the fitted model's mean log-density of the validation
/// rows to `--out`/facade.txt. `--conditional` adds a context column c to the table (the rows are shifted by
/// (c, −c)) and trains a conditional flow on the rows with their contexts, in either way. `--device cuda`
/// trains a float32 flow on cuda:0 (the CUDA emulator in the tests) and writes its parameters before
/// and after training to `--out`/initial.txt and params.txt. Rank 0's first line says whether MPI takes
/// device buffers (FLOWS_MPI_CUDA_AWARE or the library's answer).
module Flows.Distributed.Worker

open System
open System.IO
open Flows
open Flows.Bijectors
open Flows.Distributed
open Flows.Distributions
open Flows.Io
open Flows.Nn
open Flows.Tensors
open Flows.Training

let private argument (name: string) (fallback: string) (argv: string[]) =
    match Array.tryFindIndex ((=) $"--{name}") argv with
    | Some i when i + 1 < argv.Length -> argv[i + 1]
    | _ -> fallback

// Two moons-like rows, float64, from a fixed generator: every rank makes the same table.
let private table (n: int) =
    let g = Generator 17UL
    let t = g.uniform([| n; 1 |], dtype = Dtype.Float64) * Math.PI
    let upper = g.uniform([| n; 1 |], dtype = Dtype.Float64)
    let side = (upper - 0.5).sign()
    let x = Tensor.cat([| t.cos() * side + (side - 1.0) * -0.5; t.sin() * side - (side - 1.0) * 0.25 |], 1)
    x + g.normal([| n; 2 |], dtype = Dtype.Float64) * 0.1

// A context column for the rows of `table`, and the rows moved by it, so that a conditional flow has to use it.
let private withContext (x: Tensor) =
    let c = (Generator 23UL).normal([| x.shape[0]; 1 |], dtype = Dtype.Float64)
    x + Tensor.cat([| c; -c |], 1), c

let private shard (rank: int) (ranks: int) (rows: Tensor) =
    let index = [| for i in rank .. ranks .. rows.shape[0] - 1 -> i |]
    let array = rows.toArray64()
    let d = rows.shape[1]
    Tensor.ofArray(index |> Array.collect (fun i -> array[i * d .. i * d + d - 1]), [| index.Length; d |])

let private toArray2D (x: Tensor) =
    let v = x.toArray64()
    Array2D.init x.shape[0] x.shape[1] (fun i j -> float32 v[i * x.shape[1] + j])

// The same run through the C# façade: FitShard on this rank's rows (and their contexts, when given).
let private runFacade (world: Mpi) (rows: int) (train: Tensor, trainContext: Tensor option) (validation: Tensor, validationContext: Tensor option) (steps: int) (batch: int) (out: string) =
    let options = Flows.CSharp.FitOptions(Steps = Nullable steps, BatchSize = Nullable batch, LearningRate = 5e-3, Seed = 3UL)
    let mine (t: Tensor) = toArray2D (shard world.Rank world.Size t)
    let model = Flows.CSharp.DensityModel.CreateRealNvp(2, layers = 4, hidden = 16, contextDimension = (if trainContext.IsSome then 1 else 0), seed = 5UL)
    let fitted =
        match trainContext, validationContext with
        | Some c, Some vc -> model.FitShard(mine train, mine c, rows, Flows.CSharp.MpiWorld.Start(), mine validation, mine vc, options)
        | _ -> model.FitShard(mine train, rows, Flows.CSharp.MpiWorld.Start(), mine validation, options)
    if world.Rank = 0 then
        Directory.CreateDirectory out |> ignore
        let scores = match validationContext with Some c -> fitted.LogProb(toArray2D validation, toArray2D c) | None -> fitted.LogProb(toArray2D validation)
        let meanLogDensity = scores |> Array.averageBy float
        // with every held-out context negated: a model that uses its context scores these rows far lower
        let wrongContext =
            match validationContext with
            | Some c -> fitted.LogProb(toArray2D validation, toArray2D (-c)) |> Array.averageBy float
            | None -> nan
        File.WriteAllLines(Path.Combine(out, "facade.txt"), [| meanLogDensity.ToString("R"); fitted.LastFit.FinalLoss.ToString("R"); wrongContext.ToString("R") |])
    0

let private run (world: Mpi) (argv: string[]) =
    let rows = int (argument "rows" "301" argv)
    let held = int (argument "held" "61" argv)
    let steps = int (argument "steps" "50" argv)
    let batch = int (argument "batch" "64" argv)
    let out = argument "out" "." argv
    let failRank = int (argument "fail-rank" "-1" argv)
    let failStep = int (argument "fail-step" "-1" argv)
    let kill = Array.contains "--kill" argv
    let device = if argument "device" "cpu" argv = "cuda" then Device.Cuda 0 else Device.Cpu
    let dtype = if device = Device.Cpu then Dtype.Float64 else Dtype.Float32
    let place (t: Tensor) = (t.cast dtype).moveTo device
    if world.Rank = 0 then
        printfn $"training on {world.Size} ranks; CUDA-aware MPI: {world.CudaAware} ({world.CudaAwareReason}); device buffers to MPI: {(Collective.onDevice device world).IsSome}"
    let conditional = Array.contains "--conditional" argv
    let all, context = if conditional then (let x, c = withContext (table (rows + held)) in x, Some c) else table (rows + held), None
    let train, validation = all.narrow(0, 0, rows), all.narrow(0, rows, held)
    let trainContext, validationContext = context |> Option.map _.narrow(0, 0, rows), context |> Option.map _.narrow(0, rows, held)
    if Array.contains "--facade" argv then runFacade world rows (train, trainContext) (validation, validationContext) steps batch out else
    let g = Generator 5UL
    let contextDim = if conditional then 1 else 0
    let layers =
        [ for i in 0 .. 3 ->
            Coupling.create g dtype
                { Dim = 2; Mask = Coupling.Mask.Half(i % 2 = 1); Conditioner = Conditioner.Mlp([ 16; 16 ], Activation.Relu)
                  ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; Affine = true; ContextDim = contextDim } ]
    let flow = Flow.create (Distribution.standardNormal [| 2 |] dtype) layers |> Flow.moveTo device
    let mutable step = 0
    let options =
        { TrainOptions.defaults with
            Steps = steps
            BatchSize = batch
            LearningRate = 5e-3
            Seed = 3UL
            // held-out rows of a conditional flow are [x | c]
            Validation = Some(place (shard world.Rank world.Size (match validationContext with Some c -> Tensor.cat([| validation; c |], 1) | None -> validation)))
            ValidateEvery = 10
            ReportEvery = 1
            Collective = world
            Progress =
                Some(fun _ ->
                    step <- step + 1
                    if world.Rank = failRank && step = failStep then
                        if kill then Environment.Exit 9 else failwith $"rank {failRank} was told to fail at step {failStep}") }
    let mine = shard world.Rank world.Size >> place
    let objective = Objective.ForwardKl(DataSource.Sharded(mine train, trainContext |> Option.map mine, rows))
    let writeParameters (name: string) (f: Flow) =
        if world.Rank = 0 && device <> Device.Cpu then
            Directory.CreateDirectory out |> ignore
            File.WriteAllLines(Path.Combine(out, name), (Flow.parameters f).Values |> Array.collect _.toArray64() |> Array.map (fun v -> v.ToString("R")))
    writeParameters "initial.txt" flow
    let trained, report = Train.result (Train.fit options objective flow)
    writeParameters "params.txt" trained
    if world.Rank = 0 then
        Directory.CreateDirectory out |> ignore
        File.WriteAllLines(Path.Combine(out, "losses.txt"),
            [| yield! report.Losses |> Array.map (fun v -> v.ToString("R")); for step, v in report.Validations -> $"validation {step} {v:R}" |])
        ModelFile.save (Path.Combine(out, "model")) (Model.ofFlow contextDim (Flow.moveTo Device.Cpu trained))
    0

[<EntryPoint>]
let main argv = Mpi.Run(fun world -> run world argv)
