/// The ODE solvers' accounting and failures: evaluation counts against a counter wrapped around
/// the dynamics, the Butcher tableaus' own consistency, the errors of a blowing-up ODE, of too many
/// steps and of bad arguments, the error seminorm, and float32 states.
module Flows.Properties.Ode.SolverBookkeeping

open System
open Xunit
open FsCheck.FSharp
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Ode.OdeReference

/// The dynamics with a counter of their calls, kept apart from the solver's own count.
let private counted (f: Dynamics) =
    let calls = ref 0
    (fun t y ->
        calls.Value <- calls.Value + 1
        f t y),
    calls

let private decay: Dynamics = fun _ y -> -y

[<Fact>]
let ``a fixed-step solve evaluates the dynamics steps × stages times`` () =
    Gens.check 10 (Gen.choose (1, 20)) (fun steps ->
        for solver, stages in [ Solver.Euler steps, 1; Solver.Midpoint steps, 2; Solver.Rk4 steps, 4 ] do
            let f, calls = counted decay
            let onGrid = [| 0.0; 1.0 / float steps; 1.0 |]
            let s = Ode.solve solver SolverOptions.defaults f (Tensor.ofArray [| 1.0; 2.0 |]) 0.0 1.0 onGrid
            Assert.Equal(steps * stages, calls.Value)
            Assert.Equal(calls.Value, s.Nfe)
            Assert.Equal((steps, 0), (s.Accepted, s.Rejected)))

[<Fact>]
let ``an output inside the last fixed step costs one more evaluation`` () =
    Gens.check 5 (Gen.choose (1, 20)) (fun steps ->
        let f, calls = counted decay
        let s = Ode.solve (Solver.Rk4 steps) SolverOptions.defaults f (Tensor.ofArray [| 1.0 |]) 0.0 1.0 [| 1.0 - 0.5 / float steps |]
        Assert.Equal(4 * steps + 1, calls.Value)
        Assert.Equal(calls.Value, s.Nfe))

[<Fact>]
let ``an adaptive step costs six evaluations, plus the first stage and the first-step rule`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let a = stableMatrix g 3
        for solver in [ Solver.Dopri5(Tolerances.uniform 1e-7); Solver.Tsit5(Tolerances.uniform 1e-7) ] do
            for firstStep, extra in [ None, 2; Some 0.01, 1 ] do
                let f, calls = counted (linearDynamics a)
                let options = { SolverOptions.defaults with FirstStep = firstStep }
                let s = Ode.solve solver options f (Draw.normal g [| 2; 3 |]) 0.0 2.0 [| 0.5; 1.5 |]
                Assert.Equal(calls.Value, s.Nfe)
                Assert.Equal(extra + 6 * (s.Accepted + s.Rejected), s.Nfe))

[<Fact>]
let ``the tableaus are consistent`` () =
    let check (t: Tableau) =
        t.A |> Array.iteri (fun i row -> Close.scalar $"{t.Name}: row {i} of A sums to c" Tolerance.float64 t.C[i] (Array.sum row))
        Close.scalar $"{t.Name}: the weights sum to 1" Tolerance.float64 1.0 (Array.sum t.B)
    for t in [ FixedStep.euler; FixedStep.midpoint; FixedStep.rk4 ] do check t
    for pair in [ Adaptive.dopri5; Adaptive.tsit5 ] do
        let name = pair.Tableau.Name
        check pair.Tableau
        // b and b̂ both sum to 1
        Close.scalar $"{name}: the error weights sum to 0" { Abs = 1e-15; Rel = 0.0 } 0.0 (Array.sum pair.Error)
        Close.arrays $"{name}: the interpolant at θ = 1 is the step" { Abs = 1e-14; Rel = 0.0 } (Array.append pair.Tableau.B [| 0.0 |]) (pair.Interpolant 1.0)
        Close.arrays $"{name}: the interpolant at θ = 0 is the start" Tolerance.float64 (Array.zeroCreate 7) (pair.Interpolant 0.0)
        // its slope at θ = 0 is f(t, y) = k1: weights e1, by a forward difference
        let slope = pair.Interpolant 1e-7 |> Array.map (fun w -> w / 1e-7)
        Close.arrays $"{name}: the interpolant's slope at θ = 0" { Abs = 1e-5; Rel = 0.0 } (Array.init 7 (fun i -> if i = 0 then 1.0 else 0.0)) slope

let private square: Dynamics = fun _ y -> y.square()

[<Fact>]
let ``an adaptive solve of y' = y² past its blow-up at t = 1 reports the step size underflow there`` () =
    for solver in [ Solver.Dopri5 Tolerances.defaults; Solver.Tsit5 Tolerances.defaults ] do
        let failure, message = failureOf (fun () -> Ode.solve solver SolverOptions.defaults square (Tensor.ofArray [| 1.0 |]) 0.0 2.0 [||])
        match failure with
        | OdeFailure.StepSizeUnderflow(t, dt, _) ->
            // the relative error control lets the state run a little past 1 (its own blow-up moves on)
            Close.scalar $"{solver}: where the solve stopped ({message})" { Abs = 1e-2; Rel = 0.0 } 1.0 t
            Assert.StartsWith("step size underflow at t=" + t.ToString("R", Globalization.CultureInfo.InvariantCulture), message)
            Assert.True(abs dt < 1e-12, message)
        | other -> failwith $"{solver}: expected a step size underflow, got {other}"

[<Fact>]
let ``a fixed-step solve of y' = y² past its blow-up reports the non-finite state and its time`` () =
    for solver in [ Solver.Euler 1000; Solver.Midpoint 1000; Solver.Rk4 1000 ] do
        let failure, message = failureOf (fun () -> Ode.solve solver SolverOptions.defaults square (Tensor.ofArray [| 1.0 |]) 0.0 2.0 [||])
        match failure with
        | OdeFailure.NonFiniteState t ->
            Assert.True(t > 1.0 && t <= 2.0, $"{solver}: stopped at {t}")
            Assert.StartsWith("non-finite state at t=1.", message)
        | other -> failwith $"{solver}: expected a non-finite state, got {other}"

[<Fact>]
let ``a non-finite start or derivative is reported at t0`` () =
    let poisoned: Dynamics = fun _ y -> y * nan
    for solver in [ Solver.Dopri5 Tolerances.defaults; Solver.Rk4 4 ] do
        let failure, _ = failureOf (fun () -> Ode.solve solver SolverOptions.defaults decay (Tensor.ofArray [| 1.0; infinity |]) 0.5 1.0 [||])
        Assert.Equal(OdeFailure.NonFiniteState 0.5, failure)
    let failure, _ = failureOf (fun () -> Ode.solve (Solver.Tsit5 Tolerances.defaults) SolverOptions.defaults poisoned (Tensor.ofArray [| 1.0 |]) 0.5 1.0 [||])
    Assert.Equal(OdeFailure.NonFiniteState 0.5, failure)
    let failure, _ = failureOf (fun () -> Ode.solve (Solver.Euler 4) SolverOptions.defaults poisoned (Tensor.ofArray [| 1.0 |]) 0.5 1.0 [||])
    Assert.Equal(OdeFailure.NonFiniteState 0.625, failure)

[<Fact>]
let ``exceeding MaxSteps is reported with where the solve stood`` () =
    let options = { SolverOptions.defaults with MaxSteps = 5 }
    let start = [| Tensor.ofArray [| 1.0 |]; Tensor.ofArray [| 0.0 |] |]
    let failure, message =
        failureOf (fun () -> Ode.solveSystem (Solver.Dopri5 Tolerances.defaults) options (vanDerPol (Tensor.scalar (1.0, Dtype.Float64))) start 0.0 10.0 [||])
    match failure with
    | OdeFailure.MaxStepsExceeded(t, 5) ->
        Assert.True(t > 0.0 && t < 10.0, message)
        Assert.StartsWith("max steps exceeded: 5 steps", message)
    | other -> failwith $"expected max steps exceeded, got {other}"

[<Fact>]
let ``a step the controller wants below MinStep is an underflow`` () =
    let options = { SolverOptions.defaults with MinStep = 1e-3 }
    let failure, message = failureOf (fun () -> Ode.solve (Solver.Dopri5 Tolerances.defaults) options square (Tensor.ofArray [| 1.0 |]) 0.0 2.0 [||])
    match failure with
    | OdeFailure.StepSizeUnderflow(t, dt, ratio) ->
        Assert.True(t < 1.0 && abs dt < 1e-3 && ratio > 1.0, message)
        Assert.StartsWith("step size underflow at t=0.9", message)
    | other -> failwith $"expected a step size underflow, got {other}"

[<Fact>]
let ``bad arguments are ArgumentExceptions that name the argument`` () =
    let y0 = Tensor.ofArray [| 1.0; 2.0 |]
    let expectBad (name: string) (solve: unit -> Solution<Tensor>) =
        let e = Assert.ThrowsAny<ArgumentException>(fun () -> solve () |> ignore)
        Assert.Equal(name, e.ParamName)
    let solve solver options dynamics times = fun () -> Ode.solve solver options dynamics y0 0.0 1.0 times
    let defaults = SolverOptions.defaults
    expectBad "solver" (solve (Solver.Rk4 0) defaults decay [||])
    expectBad "solver" (solve (Solver.Dopri5 { Atol = 0.0; Rtol = 1e-6 }) defaults decay [||])
    expectBad "options" (solve (Solver.Tsit5 Tolerances.defaults) { defaults with MaxSteps = 0 } decay [||])
    expectBad "options" (solve (Solver.Tsit5 Tolerances.defaults) { defaults with FirstStep = Some -0.1 } decay [||])
    expectBad "options" (solve (Solver.Tsit5 Tolerances.defaults) { defaults with ErrorNorm = ErrorNorm.Only [ 1 ] } decay [||])
    expectBad "outputTimes" (solve (Solver.Euler 4) defaults decay [| 0.5; 1.5 |])
    expectBad "outputTimes" (solve (Solver.Euler 4) defaults decay [| 0.5; 0.25 |])
    expectBad "dynamics" (solve (Solver.Euler 4) defaults (fun _ y -> y.sum()) [||])
    expectBad "t1" (fun () -> Ode.solve (Solver.Euler 4) defaults decay y0 0.0 nan [||])

[<Fact>]
let ``a solve over an empty interval returns the start without evaluating`` () =
    let f, calls = counted decay
    let y0 = Tensor.ofArray [| 1.0; 2.0 |]
    let s = Ode.solve (Solver.Dopri5 Tolerances.defaults) SolverOptions.defaults f y0 0.5 0.5 [| 0.5 |]
    Assert.Equal(0, calls.Value)
    Close.tensors "final state" Tolerance.float64 y0 s.Final
    Close.tensors "output at t0" Tolerance.float64 y0 s.Outputs[0]

[<Fact>]
let ``the error seminorm ignores the state tensors it leaves out`` () =
    // A fast oscillation in the second tensor forces small steps only while it is controlled.
    let system: SystemDynamics = fun t s -> [| -s[0]; ((t * 200.0).cos() * 200.0).reshape [| 1 |] |]
    let start = [| Tensor.ofArray [| 1.0 |]; Tensor.ofArray [| 0.0 |] |]
    let solveWith norm = Ode.solveSystem (Solver.Dopri5(Tolerances.uniform 1e-6)) { SolverOptions.defaults with ErrorNorm = norm } system start 0.0 1.0 [||]
    let all, first = solveWith ErrorNorm.All, solveWith (ErrorNorm.Only [ 0 ])
    Assert.True(first.Accepted * 5 < all.Accepted, $"accepted steps: {first.Accepted} with the seminorm, {all.Accepted} without")
    Close.scalar "the controlled tensor still meets its tolerance" { Abs = 1e-5; Rel = 0.0 } (exp -1.0) (first.Final[0].toScalar())
    Close.scalar "the fully controlled solve follows sin(200 t)" { Abs = 1e-4; Rel = 0.0 } (sin 200.0) (all.Final[1].toScalar())

[<Fact>]
let ``the RMS error measure is the root mean square of each tensor's scaled error, largest over tensors`` () =
    Gens.check 10 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let shapes = [| [| 5; 3 |]; [| 4 |] |]
        let y0, y1, err = shapes |> Array.map (Draw.normal g), shapes |> Array.map (Draw.normal g), shapes |> Array.map (Draw.normal g)
        let tolerances = { Atol = 1e-3; Rtol = 1e-2 }
        // by hand, element by element in plain floats
        let scaled i =
            Array.map3 (fun (a: float) (b: float) (e: float) -> abs e / (tolerances.Atol + tolerances.Rtol * max (abs a) (abs b)))
                (y0[i].toArray64()) (y1[i].toArray64()) (err[i].toArray64())
        let rms = [ 0; 1 ] |> List.map (fun i -> sqrt (scaled i |> Array.averageBy (fun r -> r * r))) |> List.max
        let largest = [ 0; 1 ] |> List.map (fun i -> Array.max (scaled i)) |> List.max
        let ratio measure = Adaptive.errorRatio tolerances measure ErrorNorm.All y0 y1 err
        Close.scalar "RMS measure" { Abs = 0.0; Rel = 1e-12 } rms (ratio ErrorMeasure.RootMeanSquare)
        Close.scalar "max measure" { Abs = 0.0; Rel = 1e-12 } largest (ratio ErrorMeasure.Max))

[<Fact>]
let ``on a batch the RMS measure takes fewer steps than the max measure and meets its tolerance on average`` () =
    // rows decaying at rates 0.5 … 8: the fast rows set the max measure's steps
    let rates = Tensor.linspace(0.5, 8.0, 64, Dtype.Float64).reshape [| 64; 1 |]
    let z0 = Tensor.ones([| 64; 2 |], Dtype.Float64)
    let tolerance = 1e-6
    let solveWith measure = Ode.solve (Solver.Dopri5(Tolerances.uniform tolerance)) { SolverOptions.defaults with ErrorMeasure = measure } (fun _ z -> -(z * rates)) z0 0.0 1.0 [||]
    let rmsSolve, maxSolve = solveWith ErrorMeasure.RootMeanSquare, solveWith ErrorMeasure.Max
    Assert.True(rmsSolve.Nfe < maxSolve.Nfe, $"NFE {rmsSolve.Nfe} with the RMS measure, {maxSolve.Nfe} with the max measure")
    let exact = (-rates).exp().toArray64() |> Array.collect (fun v -> [| v; v |])
    let scaledErrors (s: Solution<Tensor>) = Array.map2 (fun (e: float) y -> abs (y - e) / (tolerance + tolerance * abs e)) exact (s.Final.toArray64())
    let rootMeanSquare = sqrt (scaledErrors rmsSolve |> Array.averageBy (fun r -> r * r))
    Assert.True(rootMeanSquare <= 1.0, $"RMS scaled global error {rootMeanSquare} with the RMS measure")
    Assert.True(Array.max (scaledErrors maxSolve) <= 1.0, "every row meets the tolerance with the max measure")

[<Fact>]
let ``float32 states are solved in float32 to float32 accuracy`` () =
    Gens.check 4 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let a = stableMatrix g 3
        let z0 = Draw.normal g [| 2; 3 |]
        let at = Tensor.ofArray2D(a).transpose().cast(Dtype.Float32)
        let s = Ode.solve (Solver.Tsit5 Tolerances.defaults) SolverOptions.defaults (fun _ z -> z.matmul at) (z0.cast Dtype.Float32) 0.0 1.0 [| 0.5 |]
        Assert.Equal(Dtype.Float32, s.Final.dtype)
        Close.arrays "float32 Tsit5 against the closed form" { Abs = 1e-4; Rel = 1e-4 } (mapRows (expm a 1.0) z0) (s.Final.toArray64()))
