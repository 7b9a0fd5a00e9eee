/// A CNF on six Gaussians on a hexagon (torchdyn's and DiffEqFlux's FFJORD tutorials): 16,384 samples
/// at radius 4 (std 0.5), z-scored; dynamics MLP [x; t] 3→64→64→64→2 with tanh; exact trace; Dopri5
/// at atol = rtol = 1e-4 with torchdiffeq's RMS error measure (`--error-measure max` for every row);
/// gradients by the adjoint method; AdamW 2e-3 (weight decay 1e-5), batch 1024.
/// Prints the loss, forward and backward NFE and seconds per iteration, the held-out NLL, and draws
/// density | trajectories, with the loss curve beside the picture. `--data two-moons` trains the same
/// model on fresh two-moons samples (not z-scored) against the two-moons entropy 1.571 nats.
/// `--regulariser rnode` trains the same CNF on RNODE's NLL + λ_K·K + λ_J·J (λ_K = λ_J = 0.01 as in
/// Finlay et al. 2020; `--steer b` draws end times from U(1 − b, 1 + b)); `--regulariser ot-flow`
/// trains an OT-Flow potential (width 32) on NLL + α_L·L + α_R·R (0.01, 0.05) instead. Both go
/// through Train.fit with CnfTraining's objectives.
/// `--trace hutchinson` (or `hutchinson-rademacher`) trains with FFJORD's Hutchinson estimator, one
/// probe per solve shared by the adjoint's backward solve; the held-out NLL is then scored with the
/// exact trace as well.
///   dotnet run -c Release --project examples/HexagonCnf -- [--iterations 200] [--data hexagon|two-moons]
///       [--trace exact|hutchinson|hutchinson-rademacher]
///       [--regulariser none|rnode|ot-flow] [--lambda-k 0.01] [--lambda-j 0.01] [--steer 0]
///       [--error-measure rms|max] [--report-every 10] [--output hexagon-cnf.png] [--device cpu|cuda:N]
module HexagonCnf.Program

open System
open Flows
open Flows.Continuous
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Ode
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

// log p of z-scored hexagon rows under the true mixture: 6 equal Gaussians at (c − mean)/std with
// standard deviation 0.5/std, in plain floats.
let private hexagonLogDensity (mean: float) (std: float) (x: Tensor) =
    let centres = Toy.polygonCentres 6 4.0 |> Array.map (Array.map (fun c -> (c - mean) / std))
    let s = 0.5 / std
    let xs = x.toArray64()
    Array.init (xs.Length / 2) (fun r ->
        let terms = centres |> Array.map (fun c -> -0.5 * (((xs[2 * r] - c[0]) ** 2.0 + (xs[2 * r + 1] - c[1]) ** 2.0) / (s * s)) - log (2.0 * Math.PI * s * s))
        let top = Array.max terms
        top + log (Array.sumBy (fun t -> exp (t - top)) terms) - log 6.0)


let private program (argv: string[]) =
    let args = Cli.parse [ "iterations"; "data"; "report-every"; "output"; "regulariser"; "lambda-k"; "lambda-j"; "steer"; "error-measure"; "device"; "trace" ] [] argv
    let device = Cli.device args
    let iterations = Cli.int "iterations" 200 args
    let data = Cli.text "data" "hexagon" args
    let reportEvery = Cli.int "report-every" 10 args
    let output = Cli.text "output" (if data = "two-moons" then "two-moons-cnf.png" else "hexagon-cnf.png") args
    let dtype = Dtype.Float32
    // training rows, held-out rows (in the same units) and the plot window
    let source, heldOut, bound, dataLogDensity =
        match data with
        | "hexagon" ->
            let train = Toy.hexagon (Generator 1UL) (1 <<< 14) Dtype.Float64
            // one mean and one standard deviation over all coordinates, as the document's X.mean(), X.std()
            let values = train.toArray64()
            let mean = Array.average values
            let std = sqrt (Array.sumBy (fun v -> (v - mean) ** 2.0) values / float (values.Length - 1))
            let zScore (x: Tensor) = (((x - mean) / std).cast dtype).moveTo device
            printfn $"hexagon: {train.shape[0]} samples, z-scored with mean {Cli.show 4 mean} and std {Cli.show 4 std}"
            DataSource.Dataset(zScore train), zScore (Toy.hexagon (Generator 2UL) 4096 Dtype.Float64), 2.5, hexagonLogDensity mean std
        | "two-moons" ->
            DataSource.Sampler(fun g n -> (Toy.twoMoons g n dtype).moveTo device), (Toy.twoMoons (Generator 2024UL) 20000 dtype).moveTo device, 3.0,
            fun x -> (Toy.twoMoonsLogDensity (x.cast Dtype.Float64)).toArray64()
        | other -> failwith $"--data must be hexagon or two-moons, got '{other}'"
    let regulariser = Cli.text "regulariser" "none" args
    let lambdaK = float (Cli.text "lambda-k" "0.01" args)
    let lambdaJ = float (Cli.text "lambda-j" "0.01" args)
    let steer = float (Cli.text "steer" "0" args)
    // NFE of the solves since the last report and over the whole run: the caller owns the counters,
    // the CNF only reports
    let mutable forwardNfe, backwardNfe, totalForwardNfe, totalBackwardNfe = 0, 0, 0, 0
    let onSolve (s: CnfSolve) =
        match s.Pass with
        | SolvePass.Forward ->
            forwardNfe <- forwardNfe + s.Nfe
            totalForwardNfe <- totalForwardNfe + s.Nfe
        | SolvePass.Backward ->
            backwardNfe <- backwardNfe + s.Nfe
            totalBackwardNfe <- totalBackwardNfe + s.Nfe
    let tolerance = 1e-4
    // torchdiffeq measures a step's error by the RMS over the batch; `--error-measure max` makes every
    // row meet the tolerance instead (more steps).
    let measure =
        match Cli.text "error-measure" "rms" args with
        | "rms" -> ErrorMeasure.RootMeanSquare
        | "max" -> ErrorMeasure.Max
        | other -> invalidArg "--error-measure" $"expected rms or max, got '{other}'"
    let traceName = Cli.text "trace" "exact" args
    let trace =
        match traceName with
        | "exact" -> CnfTrace.Exact
        | "hutchinson" -> CnfTrace.Hutchinson(Noise.Gaussian, Generator 5UL)
        | "hutchinson-rademacher" -> CnfTrace.Hutchinson(Noise.Rademacher, Generator 5UL)
        | other -> invalidArg "--trace" $"expected exact, hutchinson or hutchinson-rademacher, got '{other}'"
    let cnfOptions =
        { Hidden = [ 64; 64; 64 ]; EndTime = 1.0; Tolerance = tolerance; ErrorMeasure = measure; Trace = trace; Gradient = CnfGradient.Adjoint; OnSolve = Some onSolve; ContextDim = 0 }
    let otOptions = { OtFlow.defaults with Width = 32; EndTime = 1.0; Tolerance = tolerance; Gradient = CnfGradient.Adjoint }
    let baseDistribution = Distribution.standardNormal [| 2 |] dtype |> Distribution.moveTo device
    // the last step's loss parts (NLL and regularisers) for the progress line
    let mutable parts = ""
    let flow, objective =
        match regulariser with
        | "none" -> Flow.create baseDistribution [ Cnf.createWith cnfOptions (Generator 7UL) dtype 2 ] |> Flow.moveTo device, Objective.ForwardKl source
        | "rnode" ->
            let report (loss: RegularisedLoss) = parts <- $"  NLL {Cli.show 4 (loss.Nll.toScalar())} K {Cli.show 3 (loss.Kinetic.toScalar())} J {Cli.show 3 (loss.Jacobian.toScalar())}"
            Flow.create baseDistribution [ Cnf.createWith cnfOptions (Generator 7UL) dtype 2 ] |> Flow.moveTo device,
            CnfTraining.rnode { Kinetic = lambdaK; Jacobian = lambdaJ } (if steer > 0.0 then Some steer else None) (Some onSolve) (Some report) source
        | "ot-flow" ->
            let report (loss: OtFlowLoss) = parts <- $"  NLL {Cli.show 4 (loss.Nll.toScalar())} L {Cli.show 3 (loss.Transport.toScalar())} R {Cli.show 3 (loss.Hjb.toScalar())}"
            Flow.create baseDistribution [ OtFlow.createWith otOptions (Generator 7UL) dtype 2 ] |> Flow.moveTo device,
            CnfTraining.otFlow { Transport = 0.01; Hjb = 0.05 } (Some onSolve) (Some report) source
        | other -> failwith $"--regulariser must be none, rnode or ot-flow, got '{other}'"
    let mutable lastStep, lastSeconds = 0, 0.0
    let progress (p: Progress) =
        let steps = float (p.Step - lastStep)
        printfn $"iteration {p.Step,5}  loss {Cli.show 4 p.Loss}{parts}  NFE forward {Cli.show 1 (float forwardNfe / steps)} backward {Cli.show 1 (float backwardNfe / steps)}  {Cli.show 3 ((p.Seconds - lastSeconds) / steps)} s/iteration"
        forwardNfe <- 0
        backwardNfe <- 0
        lastStep <- p.Step
        lastSeconds <- p.Seconds
    let options =
        { TrainOptions.defaults with
            Steps = iterations
            BatchSize = 1024
            LearningRate = 2e-3
            Optimiser = Optimiser.AdamW(0.9, 0.999, 1e-8, 1e-5)
            Seed = 3UL
            ReportEvery = reportEvery
            Progress = Some progress }
    let outcome = Train.fit options objective flow
    let trained, report = Train.result outcome
    // the training solves only: held-out scoring and plots below would add to the counters
    let meanForwardNfe, meanBackwardNfe = float totalForwardNfe / float report.StepsRun, float totalBackwardNfe / float report.StepsRun
    match outcome with
    | Diverged _ -> printfn $"training diverged: {report.Message}"
    | Converged _ -> ()
    // the plain CNF solve of the held-out rows (no regulariser states in the error control): the cost
    // a regulariser is meant to lower; OT-Flow's layer does not report its solves
    forwardNfe <- 0
    let nll = -((Flow.logProb Context.none heldOut trained).mean().toScalar())
    let heldOutNfe = forwardNfe
    // a Hutchinson-trained CNF scored with the exact trace too (the same parameters)
    let exactNll =
        match trace, regulariser with
        | CnfTrace.Hutchinson _, ("none" | "rnode") ->
            let layer = trained.Layers.Head
            let exact = { Cnf.createWith { cnfOptions with Trace = CnfTrace.Exact; OnSolve = None } (Generator 7UL) dtype 2 with Params = layer.Params }
            Some(-((Flow.logProb Context.none heldOut { trained with Layers = [ exact ] }).mean().toScalar()))
        | _ -> None
    let n = 150
    let window = Window.square bound
    let density = (Flow.logProb Context.none (((Grid.points n window).cast dtype).moveTo device) trained).exp().toArray64()
    let layer = trained.Layers.Head
    let z0 = Generator 11UL |> fun g -> g.normal([| 300; 2 |], dtype = dtype, device = device)
    // base → data: the CNF runs its field from 0 to 1; OT-Flow runs −∇Φ (data → base) from 1 back to 0
    let field, t0, t1 = if regulariser = "ot-flow" then OtFlow.velocity layer.Params, 1.0, 0.0 else Cnf.dynamics layer.Params, 0.0, 1.0
    let times = Array.init 20 (fun i -> t0 + (t1 - t0) * float (i + 1) / 20.0)
    let solution = Ode.solve (Cnf.solverFor dtype tolerance) SolverOptions.defaults field z0 t0 t1 times
    let states = Array.append [| z0.toArray64() |] (solution.Outputs |> Array.map _.toArray64())
    let paths = Array.init 300 (fun i -> states |> Array.collect (fun s -> [| s[2 * i]; s[2 * i + 1] |]))
    Figure.row $"{data} CNF (regulariser {regulariser}, trace {traceName}), {report.StepsRun} iterations" 560 500
        [| Panel.heatMap "learned density" window n density
           Panel.trajectories "300 trajectories from N(0, I)" window paths |]
    |> Figure.save output
    printfn $"wrote {output} (learned density | 300 trajectories from N(0, I), red → blue, on [-{bound}, {bound}]^2)"
    let lossPath = LossCurve.pathBeside output
    LossCurve.save lossPath $"{data} CNF: training loss (NLL in nats, plus regularisers)" report.Losses report.Validations
    printfn $"wrote {lossPath}"
    let units = if data = "hexagon" then ", z-scored units" else ""
    printfn $"{data}-cnf.heldout_nll {Cli.show 4 nll} nats (regulariser {regulariser}, trace {traceName}, {heldOut.shape[0]} held-out rows{units})"
    exactNll |> Option.iter (fun v -> printfn $"{data}-cnf.heldout_nll_exact_trace {Cli.show 4 v} nats (the same model scored with the exact trace)")
    // the best possible: the data's own density on the same rows (the entropy, by Monte Carlo)
    printfn $"{data}-cnf.heldout_nll_of_true_density {Cli.show 4 -(Array.average (dataLogDensity (heldOut.moveTo Device.Cpu)))} nats"
    printfn $"{data}-cnf.mean_nfe forward {Cli.show 1 meanForwardNfe} backward {Cli.show 1 meanBackwardNfe} per iteration (regulariser {regulariser}, trace {traceName})"
    if regulariser <> "ot-flow" then printfn $"{data}-cnf.heldout_nfe {heldOutNfe} (one solve of the held-out rows from T to 0)"
    printfn $"{data}-cnf.seconds_per_iteration {Cli.show 3 (report.Seconds / float report.StepsRun)} s ({report.StepsRun} iterations in {Cli.show 1 report.Seconds} s)"
    0

[<EntryPoint>]
let main argv = Cli.run program argv
