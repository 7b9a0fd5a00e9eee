/// A small Glow on 8×8 single-channel images of bars and blobs at 8 grey levels (ToyImages.barsAndBlobs,
/// seeded): 2 levels of 4 steps, 32 hidden channels, trained by maximum likelihood on uniformly
/// dequantised images. Prints progress, the held-out bits/dim beside the uniform model's log2(8) = 3,
/// and draws training images beside samples at temperature 1 and 0.7 (quantised back to the grey
/// levels), with the training and held-out loss curve beside the picture (glow-8x8.loss.png).
///   Glow8x8 [--output glow-8x8.png] [--steps 2000] [--prior learned|standard]
/// The prior of the factored-out channels is Glow's learned one by default, or RealNVP's fixed N(0, I).
module Glow8x8.Program

open System
open System.Globalization
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Models
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

let private program (argv: string[]) =
    let options = Cli.parse [ "output"; "steps"; "prior" ] [] argv
    let output = Cli.text "output" "glow-8x8.png" options
    let steps = Cli.int "steps" 2000 options
    if steps < 1 then raise (Cli.UsageError $"--steps must be at least 1, got {steps}")
    let prior =
        match Cli.text "prior" "learned" options with
        | "learned" -> FactorOut.Prior.glow
        | "standard" -> FactorOut.Prior.Standard
        | other -> raise (Cli.UsageError $"--prior must be learned or standard, got '{other}'")
    let levels, side, dims = 8, 8, 64
    let dtype = Dtype.Float32
    let train = ToyImages.barsAndBlobs (Generator 1UL) 4000 levels side side
    let heldOut = ToyImages.barsAndBlobs (Generator 2UL) 1000 levels side side
    // held-out images get one fixed dequantisation, so every validation scores the same points
    let heldOutData = Images.dequantise (Generator 3UL) levels dtype heldOut
    // each step draws a random window of training images and fresh dequantisation noise
    let source =
        DataSource.Sampler(fun g n ->
            let start = g.integers([| 1 |], 0, train.shape[0] - n + 1).toArrayInt()[0]
            Images.dequantise g levels dtype (train.narrow(0, start, n)))
    let config = { Glow.Config.defaults 1 side side with Prior = prior }
    let flow = Glow.create (Generator 4UL) dtype config
    printfn $"Glow: {config.Levels} levels x {config.StepsPerLevel} steps, {config.Hidden} hidden channels, {config.Prior} prior, {(Flow.parameters flow).NumElements} parameters"
    let bits (nll: float) = Objectives.dequantisedBitsPerDim levels dims nll
    let options =
        { TrainOptions.defaults with
            Steps = steps
            BatchSize = 64
            LearningRate = 1e-3
            ClipNorm = Some 50.0
            Seed = 5UL
            Validation = Some heldOutData
            ValidateEvery = min 250 (max 1 (steps / 8))
            ReportEvery = min 250 (max 1 (steps / 8))
            Progress =
              Some(fun p ->
                  let validation = p.Validation |> Option.map (fun v -> $"  held-out {bits v:F3} bits/dim") |> Option.defaultValue ""
                  printfn $"step {p.Step,5}  train {bits p.Loss:F3} bits/dim{validation}  {float p.Step / p.Seconds:F1} it/s") }
    let outcome = Train.fit options (Objective.ForwardKl source) flow
    let trained, report = Train.result outcome
    match outcome with
    | Diverged _ -> printfn $"training diverged: {report.Message}"
    | Converged _ -> ()
    let show (v: float) = v.ToString("F3", CultureInfo.InvariantCulture)
    let heldOutBits = bits (-((Flow.logProb Context.none heldOutData trained).mean().toScalar()))
    let samples = Flow.sample Context.none (Generator 6UL) 64 trained |> Images.quantise levels
    // Glow's reduced-temperature samples: base draws scaled by T = 0.7
    let cooled =
        let z = (Generator 7UL).normal([| 64; 1; side; side |], 0.0, 0.7, dtype)
        fst (Flow.forward Context.none z trained) |> Images.quantise levels
    let grey (k: Tensor) = (k / float (levels - 1)).toArray64()
    let panel (title: string) (k: Tensor) = Panel.images title 8 side side (grey k)
    Figure.row $"Glow on 8×8 bars and blobs, {report.StepsRun} steps: held-out {show heldOutBits} bits/dim" 420 460
        [| panel "64 training images" (train.narrow(0, 0, 64)); panel "64 samples, temperature 1" samples; panel "64 samples, temperature 0.7" cooled |]
    |> Figure.save output
    printfn $"wrote {output} (64 training images | 64 samples | 64 samples at temperature 0.7)"
    let lossPath = LossCurve.pathBeside output
    LossCurve.save lossPath "Glow 8×8: training and held-out loss (bits/dim)" (Array.map bits report.Losses) (report.Validations |> Array.map (fun (step, v) -> step, bits v))
    printfn $"wrote {lossPath}"
    printfn $"glow-8x8.heldout_bits_per_dim {show heldOutBits}"
    printfn $"glow-8x8.uniform_bits_per_dim {show (Math.Log2(float levels))}"
    printfn $"glow-8x8.train_seconds {show report.Seconds}"
    0

[<EntryPoint>]
let main argv = Cli.run program argv
