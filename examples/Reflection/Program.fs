/// Augmented neural ODEs' reflection (Dupont et al. 2019): a neural ODE asked to map x ↦ −x on 100 points of [−1, 1] (MSE loss,
/// Adam 0.01, one batch). In one dimension trajectories of an ODE cannot cross, so the plain model
/// can at best squeeze every point towards 0 (MSE about E[x²] = 0.34); with one augmented dimension
/// (Dupont et al. 2019) the trajectories pass around each other and the loss goes to about 0. The
/// fields are MLPs [state; t] → 32 → state with tanh, solved by RK4 with 10 steps over [0, 1].
/// Prints both final losses, draws the first coordinate of each trajectory against t and writes the
/// loss curves beside the picture (reflection.loss.png). With
/// `--dynamics galerkin` the fields are Galerkin neural ODEs (Massaroli et al. 2020): state → 32 →
/// state with every weight expanded in a Fourier basis of depth with 2 modes (no t input).
module Reflection.Program

open System.Globalization
open Flows
open Flows.Continuous
open Flows.Ode
open Flows.Plotting
open Flows.Tensors
open Flows.Training
open Examples

let private solver = Solver.Rk4 10

/// Which field the example trains: the MLP on [state; t], or a Galerkin field in a depth basis.
[<RequireQualifiedAccess>]
type private Dynamics =
    | Mlp
    | Galerkin of GalerkinBasis

let private parameters (dynamics: Dynamics) (extra: int) =
    match dynamics with
    | Dynamics.Mlp -> Augmented.create (Generator 7UL) Dtype.Float32 1 extra [ 32 ]
    | Dynamics.Galerkin basis -> Galerkin.create (Generator 7UL) Dtype.Float32 basis (1 + extra) [ 32 ] false

let private field (dynamics: Dynamics) (p: Params) =
    match dynamics with
    | Dynamics.Mlp -> Cnf.dynamics p
    | Dynamics.Galerkin basis -> Galerkin.field basis 1.0 p

/// Trains the field with `extra` augmented dimensions for `steps` Adam steps; returns the
/// parameters and the loss of each step.
let private train (dynamics: Dynamics) (extra: int) (steps: int) (x: Tensor) =
    let initial = parameters dynamics extra
    let loss (values: Tensor[]) =
        let y = Augmented.apply solver SolverOptions.defaults extra (field dynamics (initial.WithValues values)) x 0.0 1.0
        (y + x).square().mean()
    let mutable p, state = initial, Optimiser.init initial
    let losses =
        Array.init steps (fun _ ->
            let value, grads = Ad.fgradN loss p.Values
            let next, nextState = Optimiser.step Optimiser.adam 0.01 state p grads
            p <- next
            state <- nextState
            value.toScalar())
    p, losses, (loss p.Values).toScalar()

/// The first coordinate of every 5th point's trajectory at 41 times in [0, 1], coloured blue for
/// x < 0 and red for x > 0 (one legend entry per colour).
let private trajectories (dynamics: Dynamics) (extra: int) (p: Params) (x: Tensor) =
    let times = Array.init 41 (fun i -> float i / 40.0)
    let starts = x.narrow(0, 2, 96).reshape([| 24; 4 |]).narrow(1, 0, 1)
    let path = Augmented.solve solver SolverOptions.defaults extra (field dynamics p) starts 0.0 1.0 times
    let values = path.Outputs |> Array.map (fun o -> (Augmented.project 1 o).toArray64())
    let first = values[0] |> Array.findIndex (fun v -> v > 0.0)
    [ for i in 0 .. starts.shape[0] - 1 ->
          let x0 = values[0][i]
          { X = times
            Y = values |> Array.map (fun v -> v[i])
            Colour = if x0 < 0.0 then "#285ac8" else "#d23228"
            Label = if i = 0 then "x(0) < 0" elif i = first then "x(0) > 0" else "" } ]

let private program (argv: string[]) =
    let options = Cli.parse [ "dynamics"; "output"; "steps" ] [] argv
    let dynamics =
        match Cli.text "dynamics" "mlp" options with
        | "galerkin" -> Dynamics.Galerkin(GalerkinBasis.Fourier 2)
        | "mlp" -> Dynamics.Mlp
        | other -> raise (Cli.UsageError $"--dynamics must be mlp or galerkin, got '{other}'")
    let prefix = match dynamics with Dynamics.Mlp -> "" | Dynamics.Galerkin _ -> "galerkin_"
    let output = Cli.text "output" (if prefix = "" then "reflection.png" else "reflection-galerkin.png") options
    let x = Tensor.linspace(-1.0, 1.0, 100, Dtype.Float32).reshape [| 100; 1 |]
    let steps = Cli.int "steps" 300 options
    if steps < 1 then raise (Cli.UsageError $"--steps must be at least 1, got {steps}")
    let show (v: float) = v.ToString("F4", CultureInfo.InvariantCulture)
    let panel (extra: int) =
        let clock = System.Diagnostics.Stopwatch.StartNew()
        let p, losses, final = train dynamics extra steps x
        printfn $"augmented dimensions {extra}: loss {show losses[0]} at step 1, {show final} after {steps} steps ({clock.Elapsed.TotalSeconds:F1} s)"
        let name = if extra = 0 then "plain 1-D neural ODE" else $"augmented with {extra} extra dimension"
        let plot = Panel.lines $"{name}: final MSE {show final}" "t" "x(t)" (trajectories dynamics extra p x)
        plot.Axes.SetLimits(0.0, 1.0, -1.3, 1.3)
        final, plot, (name, losses)
    let plainLoss, plain, plainCurve = panel 0
    let augmentedLoss, augmented, augmentedCurve = panel 1
    Figure.row "learning x -> -x: trajectories x(t) of every 4th point" 560 460 [| plain; augmented |] |> Figure.save output
    let lossPath = LossCurve.pathBeside output
    LossCurve.saveAll lossPath [| for name, losses in [ plainCurve; augmentedCurve ] -> $"{name}: training MSE", losses, [||] |]
    printfn $"wrote {lossPath}"
    printfn $"wrote {output} (x(t) against t in [0, 1]: plain 1-D neural ODE | augmented with one extra dimension)"
    match dynamics with
    | Dynamics.Galerkin basis -> printfn $"reflection.galerkin_basis {GalerkinBasis.name basis}"
    | Dynamics.Mlp -> ()
    printfn $"reflection.{prefix}plain_final_mse {show plainLoss}"
    printfn $"reflection.{prefix}augmented_final_mse {show augmentedLoss}"
    0

[<EntryPoint>]
let main argv = Cli.run program argv
