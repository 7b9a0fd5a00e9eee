/// Issue 5's residual flow (Chen et al. 2019): residual blocks with spectrally normalised linear
/// layers (c = 0.9) and LipSwish, ActNorm between them. As in the paper the blocks map data to the
/// base, z = x + g(x), so density needs no fixed point (sampling would); trained by maximum
/// likelihood with the unbiased Russian-roulette log-det on two moons and on 8 Gaussians. For each,
/// prints the held-out NLL of the trained model twice: with the roulette estimate used in training
/// (mean and standard error over independent chunks, each with its own roulette draw) and with the
/// exact autodiff log-det of the same parameters; writes a PNG of target | learned density.
module ResidualFlow.Program

open Flows
open Flows.Bijectors
open Flows.Bijectors.Residual
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

let private blockOptions (logDet: ResidualLogDet) =
    { Residual.defaults with
        Hidden = [ 32; 32 ]
        Coefficient = 0.9
        Activation = LipschitzActivation.LipSwish
        LogDet = logDet }

let private roulette = ResidualLogDet.RussianRoulette(2, 0.5)

/// A residual block run data → base (Inverse: x + g(x) and its log-det; Forward: the fixed point).
let private block (logDet: ResidualLogDet) (gen: Generator) = Bijector.invert (Residual.createWith (blockOptions logDet) gen Dtype.Float32 2)

let private flowOf (blocks: int) (gen: Generator) =
    let layers =
        [ for _ in 1..blocks do
              yield ActNorm.create Dtype.Float32 2
              yield block roulette gen ]
    Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float32) layers

/// The same trained flow with every residual block's log-det computed another way (parameters and
/// spectral-norm vectors copied).
let private withLogDet (logDet: ResidualLogDet) (gen: Generator) (flow: Flow) =
    let swap (b: Bijector) =
        if b.Name <> "residual" then b
        else { block logDet gen with Params = b.Params; Buffers = b.Buffers }
    { flow with Layers = List.map swap flow.Layers }

/// Held-out NLL as the mean over `chunks` equal chunks, each scored in one call (so with its own
/// roulette length), with the standard error of the chunk means.
let private chunkedNll (chunks: int) (x: Tensor) (flow: Flow) =
    let size = x.shape[0] / chunks
    let means = Array.init chunks (fun i -> -((Flow.logProb Context.none (x.narrow(0, i * size, size)) flow).mean().toScalar()))
    let m = Array.average means
    m, sqrt ((means |> Array.sumBy (fun v -> (v - m) ** 2.0)) / float (chunks - 1) / float chunks)

let private run (name: string) (sample: Generator -> int -> Dtype -> Tensor) (logDensity: Tensor -> Tensor) (entropy: float)
                (window: float) (options: Cli.Options) =
    let steps = Cli.int "steps" 1500 options
    let seed = Cli.seed 11UL options
    let flow = flowOf (Cli.int "blocks" 8 options) (Generator seed)
    let train =
        { TrainOptions.defaults with
            Steps = steps
            BatchSize = Cli.int "batch" 256 options
            LearningRate = 3e-3
            Schedule = Schedule.Cosine(steps, 0.0)
            ClipNorm = Some 10.0
            Seed = seed
            ReportEvery = max 1 (steps / 4)
            Progress = Some(fun p -> printfn $"  {name} step {p.Step,5}  loss {Cli.show 4 p.Loss}  {Cli.show 1 p.Seconds} s") }
    let outcome = Train.fit train (Objective.ForwardKl(DataSource.Sampler(fun g n -> sample g n Dtype.Float32))) flow
    let trained, report = Train.result outcome
    match outcome with
    | Diverged _ -> printfn $"  {name}: training diverged: {report.Message}"
    | Converged _ -> ()
    let x = sample (Generator 2024UL) 10000 Dtype.Float32
    let rouletteNll, rouletteSe = chunkedNll 20 x trained
    let exact = withLogDet ResidualLogDet.Exact (Generator 0UL) trained
    let exactNll, exactSe = chunkedNll 20 x exact
    let n = 160
    let square = Window.square window
    let points = Grid.points n square
    let target = (logDensity points).exp().toArray64()
    let learned = (Flow.logProb Context.none (points.cast Dtype.Float32) exact).exp().toArray64()
    let output = $"""{Cli.text "output" "residual-flow" options}-{name}.png"""
    Figure.row $"residual flow on {name}, {report.StepsRun} steps" 520 460
        [| Panel.heatMap "target density" square n target
           Panel.heatMap "learned density (exact log-det)" square n learned |]
    |> Figure.save output
    printfn $"wrote {output} (target | learned density, exact log-det, on [-{window}, {window}]²)"
    let lossPath = LossCurve.pathBeside output
    LossCurve.save lossPath $"residual flow on {name}: training loss (NLL in nats, Russian-roulette log-det)" report.Losses report.Validations
    printfn $"wrote {lossPath}"
    printfn $"{name}.train_seconds {Cli.show 1 report.Seconds} ({report.StepsRun} steps of batch {train.BatchSize}; shared machine, rough)"
    printfn $"{name}.heldout_nll.roulette {Cli.show 4 rouletteNll} ± {Cli.show 4 rouletteSe} nats"
    printfn $"{name}.heldout_nll.exact    {Cli.show 4 exactNll} ± {Cli.show 4 exactSe} nats"
    printfn $"{name}.roulette_minus_exact {Cli.show 4 (rouletteNll - exactNll)} nats"
    printfn $"{name}.entropy              {Cli.show 4 entropy} nats (the best NLL possible)"

let private program (argv: string[]) =
    let options = Cli.parse [ "steps"; "seed"; "output"; "batch"; "blocks" ] [] argv
    run "two-moons" Toy.twoMoons Toy.twoMoonsLogDensity (Entropy.twoMoons.Force()) 3.0 options
    run "8gaussians" Toy.eightGaussians Toy.eightGaussiansLogDensity (fst (Entropy.eightGaussians (Generator 99UL) 1000000)) 3.5 options
    0

[<EntryPoint>]
let main argv = Cli.run program argv
