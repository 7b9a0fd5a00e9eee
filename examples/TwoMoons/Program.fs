/// normflows' two-moons example: two affine coupling blocks with MLP [1, 64, 64, 2]
/// conditioners (last layer zero), swap permutations, a learnable diagonal Gaussian base, Adam 5e-4
/// with weight decay 1e-5, batch 512, 3201 iterations of fresh exact samples. Prints progress, the
/// held-out NLL on 20,000 fresh samples and the training speed, and draws target | learned density
/// beside samples of the flow, and the loss curve beside the picture (two-moons.loss.png).
///   TwoMoons [--output two-moons.png] [--steps 3201] [--device cpu|cuda:N]
module TwoMoons.Program

open System
open System.Globalization
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

let private program (argv: string[]) =
    let options = Cli.parse [ "output"; "steps"; "device" ] [] argv
    let output = Cli.text "output" "two-moons.png" options
    let device = Cli.device options
    let steps = Cli.int "steps" 3201 options
    if steps < 1 then raise (Cli.UsageError $"--steps must be at least 1, got {steps}")
    let gen = Generator 1234UL
    let block () =
        [ Coupling.create gen Dtype.Float32
              { Dim = 2; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp([ 64; 64 ], Activation.Relu)
                ScaleMap = Coupling.ScaleMap.Exp; Affine = true; ContextDim = 0 }
          Permute.swap 2 ]
    let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) (block () @ block ()) |> Flow.moveTo device
    let options =
        { TrainOptions.defaults with
            Steps = steps
            BatchSize = 512
            LearningRate = 5e-4
            Optimiser = Optimiser.Adam(0.9, 0.999, 1e-8, 1e-5)
            Seed = 7UL
            ReportEvery = max 1 (steps / 4)
            Progress = Some(fun p -> printfn $"iteration {p.Step,5}  loss {p.Loss:F4}  {float p.Step / p.Seconds:F0} it/s") }
    let sampler = DataSource.Sampler(fun g n -> (Toy.twoMoons g n Dtype.Float32).moveTo device)
    let outcome = Train.fit options (Objective.ForwardKl sampler) flow
    let trained, report = Train.result outcome
    match outcome with
    | Diverged _ -> printfn $"training diverged: {report.Message}"
    | Converged _ -> ()
    let speed = float report.StepsRun / report.Seconds
    let heldOut = (Toy.twoMoons (Generator 2024UL) 20000 Dtype.Float32).moveTo device
    let nll = -((Flow.logProb Context.none heldOut trained).mean().toScalar())
    printfn $"final training loss {report.Losses[report.Losses.Length - 1]:F4} nats"
    let n, window = 200, Window.square 3.0
    let points = Grid.points n window
    let target = (Toy.twoMoonsLogDensity points).exp().toArray64()
    let learned = (Flow.logProb Context.none ((points.cast Dtype.Float32).moveTo device) trained).exp().toArray64()
    let samples = (Flow.sample Context.none (Generator 99UL) 5000 trained).toArray64()
    Figure.row $"two moons: RealNVP, {report.StepsRun} steps" 520 460
        [| Panel.heatMap "target density" window n target
           Panel.heatMap "learned density" window n learned
           Panel.scatterRows "5,000 samples of the flow" window samples |]
    |> Figure.save output
    printfn $"wrote {output} (target | learned density | samples on [-3, 3]^2)"
    let lossPath = LossCurve.pathBeside output
    LossCurve.save lossPath "two moons: training loss (NLL, nats per sample)" report.Losses report.Validations
    printfn $"wrote {lossPath}"
    let show (v: float) = v.ToString("F4", CultureInfo.InvariantCulture)
    printfn $"two-moons.heldout_nll {show nll} nats"
    let speedText = speed.ToString("F1", CultureInfo.InvariantCulture)
    printfn $"two-moons.train_speed {speedText} it/s"
    0

[<EntryPoint>]
let main argv = Cli.run program argv
