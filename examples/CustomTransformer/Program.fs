/// A user's own element-wise transformer in the library's generic coupling and autoregressive
/// layers: the law suite's verdict on a correct transformer and on two wrong ones, then a flow of
/// the correct one's couplings trained on two moons, saved and loaded.
///   CustomTransformer [--steps 1500] [--seed 1]
module CustomTransformer.Program

open System
open System.IO
open Flows
open Flows.Bijectors
open Flows.Datasets
open Flows.Distributions
open Flows.Io
open Flows.Tensors
open Flows.Training
open Examples
open CustomTransformer.Transformers

let private program (argv: string[]) =
    let options = Cli.parse [ "steps"; "seed" ] [] argv
    let steps = Cli.int "steps" 1500 options
    if steps < 1 then raise (Cli.UsageError $"--steps must be at least 1, got {steps}")
    let seed = uint64 (Cli.int "seed" 1 options)
    for t in [ softplusScale; offByConstant; notInverse ] do
        for line in verdicts t do printfn "%s" line
    // four couplings of the correct transformer, each after a swap, on two moons
    let gen = Generator seed
    let layers = [ for _ in 1 .. 4 do yield Permute.swap 2; yield coupling softplusScale gen Dtype.Float32 2 ]
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float32) layers
    let train = { TrainOptions.defaults with Steps = steps; BatchSize = 256; LearningRate = 2e-3; Seed = seed }
    let sampler = DataSource.Sampler(fun g n -> Toy.twoMoons g n Dtype.Float32)
    let trained, report = Train.fit train (Objective.ForwardKl sampler) flow |> Train.result
    let heldOut = Toy.twoMoons (Generator 2024UL) 20000 Dtype.Float32
    let nll = -((Flow.logProb Context.none heldOut trained).mean().toScalar())
    printfn $"two-moons.heldout_nll {nll:F4} nats after {report.StepsRun} steps (the data's entropy is {Entropy.twoMoons.Value:F3})"
    let folder = Path.Combine(Path.GetTempPath(), $"custom-transformer-{Guid.NewGuid():N}")
    try
        ModelFile.save folder (Model.ofFlow 0 trained)
        let loaded = ModelFile.load folder
        let same = (Model.logProb Context.none heldOut loaded).toArray64() = (Flow.logProb Context.none heldOut trained).toArray64()
        printfn "saved and loaded: log-densities %s" (if same then "identical" else "DIFFER")
    finally
        if Directory.Exists folder then Directory.Delete(folder, true)
    0

[<EntryPoint>]
let main argv = Cli.run program argv
