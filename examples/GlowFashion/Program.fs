/// Glow (Kingma & Dhariwal 2018) and RealNVP (Dinh et al. 2017; Glow.Config.realNvp: fixed N(0, I)
/// prior on the factored-out halves, soft-clamped log-scales) on Fashion-MNIST (Xiao et al. 2017):
/// 28×28 grey images at 256 levels, two squeeze levels (28 = 4·7, so no padding), uniform
/// dequantisation, maximum likelihood with Adam at Glow's 1e-3 after a linear warm-up, scored on the
/// 10,000 test images in bits/dim (Objectives.dequantisedBitsPerDim has the derivation). Prints
/// progress and s/step, the test bits/dim, and draws test images beside samples at temperature T,
/// with the training and held-out loss curves beside the picture (glow-fashion.loss.png).
/// Defaults (2 levels × 4 steps, 64 hidden channels, batch 32, 3000 steps, 300 warm-up steps) were
/// set from short runs on the shared 2-core machine: 0.21 s per step when it was idle, 0.33–0.99
/// under other builds and tests; 10,000 test images in 21–38 s. One model: about 11 minutes on an
/// idle machine, 17–36 under that load.
///   GlowFashion [--model glow|realnvp|both] [--device cpu|cuda:N] [--steps N] [--batch N]
///     [--levels N] [--steps-per-level N] [--hidden N] [--train-images N] [--test-images N]
///     [--warmup N] [--lr R] [--temperature T] [--seed N] [--output file.png]
module GlowFashion.Program

open System.Diagnostics
open Flows
open Flows.Data
open Flows.Datasets
open Flows.Models
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

/// Grey levels of Fashion-MNIST pixels.
let private levels = 256

/// Training images held out to choose the best parameters during training (never the test set).
let private heldOutCount = 500

/// Test images scored per forward pass.
let private evalChunk = 250

/// Trains one model and reports its test bits/dim; returns its samples at the temperature and its
/// loss curve (training and held-out bits/dim).
let private run (name: string) (config: Glow.Config) (options: Cli.Options) (device: Device) (train: Tensor) (heldOut: Tensor) (test: Tensor) =
    let steps, batch, seed = Cli.int "steps" 3000 options, Cli.int "batch" 32 options, Cli.seed 1UL options
    let warmup = Cli.int "warmup" (max 1 (steps / 10)) options
    let temperature = Cli.number "temperature" 0.7 options
    let learningRate = Cli.number "lr" 1e-3 options
    // Glow's data-dependent ActNorm initialisation, once, on a first batch of 256 images
    let first = ImageDensity.batch levels Dtype.Float32 device train (Generator(seed + 5UL)) 256
    let flow = Glow.create (Generator(seed + 1UL)) Dtype.Float32 config |> Flow.moveTo device |> Flow.initialise Context.training first
    printfn $"{name}: {config.Levels} levels x {config.StepsPerLevel} steps, {config.Hidden} hidden channels, {config.Prior} prior, {config.ScaleMap} scale, {(Flow.parameters flow).NumElements} parameters"
    let bits (nll: float) = Objectives.dequantisedBitsPerDim levels (Shape.numel test.shape[1..]) nll
    let options =
        { TrainOptions.defaults with
            Steps = steps
            BatchSize = batch
            LearningRate = learningRate
            Schedule = Schedule.Warmup warmup
            // as Glow re-implementations do: a rare large gradient otherwise undoes hundreds of steps
            ClipNorm = Some 50.0
            Seed = seed + 2UL
            Validation = Some((Images.dequantise (Generator(seed + 3UL)) levels Dtype.Float32 heldOut).moveTo device)
            ValidateEvery = 2 * max 1 (steps / 20)
            ReportEvery = max 1 (steps / 20)
            Progress =
              Some(fun p ->
                  let validation = p.Validation |> Option.map (fun v -> $"  held-out {bits v:F3}") |> Option.defaultValue ""
                  printfn $"{name} step {p.Step,6}/{p.TotalSteps}  train {bits p.Loss:F3} bits/dim{validation}  {p.Seconds / float p.Step:F3} s/step") }
    // CPU seconds as well as wall seconds: on a shared machine they bound the unloaded wall time
    let cpu () = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds
    let trainCpu = cpu ()
    let outcome = Train.fit options (Objective.ForwardKl(ImageDensity.source levels Dtype.Float32 device train)) flow
    let trained, report = Train.result outcome
    match outcome with
    | Diverged _ -> printfn $"{name}: training diverged: {report.Message}"
    | Converged _ -> printfn $"{name}: {report.Message}, {report.SkippedSteps} non-finite steps skipped"
    let trainCpu = cpu () - trainCpu
    let clock, evalCpu = Stopwatch.StartNew(), cpu ()
    // one fixed dequantisation of the test images, the same for every model
    let testBits = ImageDensity.bitsPerDim levels evalChunk trained (Images.dequantise (Generator 7UL) levels Dtype.Float32 test)
    let evalSeconds, evalCpu = clock.Elapsed.TotalSeconds, cpu () - evalCpu
    printfn $"{name}.fashion_mnist.test_bits_per_dim {Cli.show 4 testBits}"
    printfn $"{name}.fashion_mnist.test_images {test.shape[0]}"
    printfn $"{name}.fashion_mnist.seconds_per_step {Cli.show 3 (report.Seconds / float report.StepsRun)}"
    printfn $"{name}.fashion_mnist.cpu_seconds_per_step {Cli.show 3 (trainCpu / float report.StepsRun)}"
    printfn $"{name}.fashion_mnist.train_seconds {Cli.show 1 report.Seconds}"
    printfn $"{name}.fashion_mnist.eval_seconds {Cli.show 1 evalSeconds}"
    printfn $"{name}.fashion_mnist.eval_cpu_seconds {Cli.show 1 evalCpu}"
    let curve = $"{name}: training and held-out loss (bits/dim)", Array.map bits report.Losses, report.Validations |> Array.map (fun (step, v) -> step, bits v)
    ImageDensity.sample (Generator(seed + 4UL)) levels temperature 64 trained, curve

let private program (argv: string[]) =
    let options =
        Cli.parse
            [ "model"; "device"; "steps"; "batch"; "levels"; "steps-per-level"; "hidden"; "train-images"; "test-images"; "warmup"
              "lr"; "temperature"; "seed"; "output" ]
            [] argv
    let device = Cli.device options
    let models =
        match Cli.text "model" "glow" options with
        | "glow" -> [ "glow" ]
        | "realnvp" -> [ "realnvp" ]
        | "both" -> [ "glow"; "realnvp" ]
        | other -> invalidArg "model" $"expected glow, realnvp or both, got '{other}'"
    let trainCount = Cli.int "train-images" (60000 - heldOutCount) options
    Guard.that "train-images" (trainCount >= 1 && trainCount <= 60000 - heldOutCount)
        $"expected 1 .. {60000 - heldOutCount} (the last {heldOutCount} training images are held out), got {trainCount}"
    let testCount = Cli.int "test-images" 10000 options
    Guard.that "test-images" (testCount >= 1 && testCount <= 10000) $"expected 1 .. 10000, got {testCount}"
    // the held-out images follow the training images in the training split
    let trainSplit = (FashionMnist.load "train" (Some(trainCount + heldOutCount))).Images
    let train, heldOut = trainSplit.narrow(0, 0, trainCount), trainSplit.narrow(0, trainCount, heldOutCount)
    let test = (FashionMnist.load "t10k" (Some testCount)).Images
    let side = test.shape[2]
    let config =
        { Glow.Config.defaults 1 side side with
            Levels = Cli.int "levels" 2 options
            StepsPerLevel = Cli.int "steps-per-level" 4 options
            Hidden = Cli.int "hidden" 64 options }
    printfn $"Fashion-MNIST: {train.shape[0]} training images, {heldOut.shape[0]} held out, {test.shape[0]} test images, device {device}"
    let samples =
        [ for name in models ->
              let modelConfig = if name = "realnvp" then Glow.Config.realNvp config else config
              run name modelConfig options device train heldOut test ]
    let panel (title: string) (k: Tensor) = Panel.images title 8 side side ((k / float (levels - 1)).toArray64())
    let output = Cli.text "output" "glow-fashion.png" options
    let temperature = Cli.number "temperature" 0.7 options
    let shown = min 64 test.shape[0]
    Figure.row "Fashion-MNIST: test images, then each model's samples" 560 620
        (Array.ofList (panel $"{shown} test images" (test.narrow(0, 0, shown)) :: List.map2 (fun name (k, _) -> panel $"{name}: 64 samples, temperature {temperature}" k) models samples))
    |> Figure.save output
    let names = System.String.Join(" | ", models |> List.map (fun m -> $"{m} samples at temperature {temperature}"))
    printfn $"wrote {output} (test images | {names})"
    let lossPath = LossCurve.pathBeside output
    LossCurve.saveAll lossPath (samples |> List.map snd |> Array.ofList)
    printfn $"wrote {lossPath}"
    0

[<EntryPoint>]
let main argv = Cli.run program argv
