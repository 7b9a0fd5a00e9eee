/// Galerkin neural ODEs: each basis against closed forms, the field against a depth-varying MLP
/// computed element by element from the same coefficients, adjoint gradients against
/// backpropagation through the solver, and a one-function basis as the plain MLP field.
module Flows.Properties.Continuous.GalerkinTests

open System
open Xunit
open FsCheck.FSharp
open Flows
open Flows.Continuous
open Flows.Nn
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

let private bases =
    [ GalerkinBasis.Fourier 2; GalerkinBasis.Chebyshev 3; GalerkinBasis.PiecewiseConstant 3 ]

// The basis by its closed forms, not the library's recurrence: cos/sin of the phase, T_k(x) =
// cos(k·arccos x) on [−1, 1], and the piece that holds t.
let private closedForm (basis: GalerkinBasis) (endTime: float) (t: float) =
    match basis with
    | GalerkinBasis.Fourier modes ->
        [| yield 1.0
           for k in 1 .. modes do
               yield cos (2.0 * Math.PI * float k * t / endTime)
               yield sin (2.0 * Math.PI * float k * t / endTime) |]
    | GalerkinBasis.Chebyshev degree ->
        let x = 2.0 * t / endTime - 1.0
        Array.init (degree + 1) (fun k -> cos (float k * acos x))
    | GalerkinBasis.PiecewiseConstant pieces ->
        Array.init pieces (fun k -> if float k * endTime / float pieces <= t && t < float (k + 1) * endTime / float pieces then 1.0 else 0.0)

[<Fact>]
let ``the Fourier basis at multiples of T/8 takes the octant values of cos and sin`` () =
    let r = sqrt 0.5
    // cos and sin of m·π/4 for m = 0 … 7, read off the unit circle
    let cosines = [| 1.0; r; 0.0; -r; -1.0; -r; 0.0; r |]
    let sines = [| 0.0; r; 1.0; r; 0.0; -r; -1.0; -r |]
    let endTime = 1.6
    for j in 0 .. 7 do
        let expected = [| yield 1.0; for k in 1 .. 3 do yield cosines[k * j % 8]; yield sines[k * j % 8] |]
        Close.arrays $"ψ(t = {j}T/8)" { Abs = 1e-14; Rel = 1e-14 } expected (GalerkinBasis.values (GalerkinBasis.Fourier 3) endTime (float j * endTime / 8.0))

[<Fact>]
let ``Chebyshev values are cos(k·arccos x) inside [0, T], cosh(k·arccosh x) beyond T and 4x³ − 3x for T_3`` () =
    Gens.check 10 (Gen.zip Gens.seed (Gen.choose (0, 6))) (fun (seed, degree) ->
        let g = Draw.generator seed
        let endTime = 0.5 + 2.0 * g.uniform([| 1 |], 0.0, 1.0, dtype = Dtype.Float64).toArray64()[0]
        let x = (Draw.uniform g -1.0 1.0 [| 1 |]).toArray64()[0]
        let values = GalerkinBasis.values (GalerkinBasis.Chebyshev degree) endTime ((x + 1.0) * endTime / 2.0)
        Close.arrays "T_k(x)" { Abs = 1e-12; Rel = 1e-12 } (Array.init (degree + 1) (fun k -> cos (float k * acos x))) values
        if degree >= 3 then Close.scalar "T_3(x)" { Abs = 1e-12; Rel = 1e-12 } (4.0 * x ** 3.0 - 3.0 * x) values[3]
        // an adaptive step may probe past T: the polynomial continues as cosh(k·arccosh x)
        let beyond = 1.0 + (Draw.uniform g 0.0 0.5 [| 1 |]).toArray64()[0]
        Close.arrays "T_k(x > 1)" { Abs = 1e-12; Rel = 1e-12 } (Array.init (degree + 1) (fun k -> cosh (float k * Math.Acosh beyond)))
            (GalerkinBasis.values (GalerkinBasis.Chebyshev degree) endTime ((beyond + 1.0) * endTime / 2.0)))

[<Fact>]
let ``the piecewise-constant basis is one at the piece that holds t, the end pieces extended past [0, T]`` () =
    let endTime, pieces = 2.5, 5
    let oneHot j = Array.init pieces (fun k -> if k = j then 1.0 else 0.0)
    let at t = GalerkinBasis.values (GalerkinBasis.PiecewiseConstant pieces) endTime t
    for j in 0 .. pieces - 1 do
        let width = endTime / float pieces
        Close.arrays $"middle of piece {j}" { Abs = 0.0; Rel = 0.0 } (oneHot j) (at ((float j + 0.5) * width))
        Close.arrays $"start of piece {j}" { Abs = 0.0; Rel = 0.0 } (oneHot j) (at (float j * width + 1e-9))
    Close.arrays "t = 0" { Abs = 0.0; Rel = 0.0 } (oneHot 0) (at 0.0)
    Close.arrays "t = T" { Abs = 0.0; Rel = 0.0 } (oneHot (pieces - 1)) (at endTime)
    Close.arrays "t < 0" { Abs = 0.0; Rel = 0.0 } (oneHot 0) (at -0.1)
    Close.arrays "t > T" { Abs = 0.0; Rel = 0.0 } (oneHot (pieces - 1)) (at (endTime + 0.1))

[<Fact>]
let ``an expansion is Σ α_k ψ_k(t), its gradient in α_k is ψ_k(t), and the constant's expansion is one`` () =
    Gens.check 6 Gens.seed (fun seed ->
        let g = Draw.generator seed
        for basis in bases do
            let k = GalerkinBasis.size basis
            let endTime = 1.3
            let t = (Draw.uniform g 0.0 endTime [| 1 |]).toArray64()[0]
            let psi = closedForm basis endTime t
            let alpha = Draw.normal g [| k; 2; 3 |]
            let a = alpha.toArray64()
            let expected = Array.init 6 (fun i -> Seq.sum (seq { for j in 0 .. k - 1 -> a[j * 6 + i] * psi[j] }))
            Close.values $"θ(t) in {GalerkinBasis.name basis}" Tolerance.float64 [| 2; 3 |] expected (GalerkinBasis.expand basis endTime alpha t)
            let weights = Draw.normal g [| 2; 3 |]
            let w = weights.toArray64()
            let gradient = (Ad.gradN (fun xs -> (GalerkinBasis.expand basis endTime xs[0] t * weights).sum()) [| alpha |])[0]
            Close.values "∂/∂α" Tolerance.float64 [| k; 2; 3 |] (Array.init (k * 6) (fun i -> psi[i / 6] * w[i % 6])) gradient
            let one = Array.fold2 (fun s c p -> s + c * p) 0.0 (GalerkinBasis.constant basis) (GalerkinBasis.values basis endTime t)
            Close.scalar "Σ c_k ψ_k(t)" Tolerance.float64 1.0 one)

// Coefficients with every basis function in use (a fresh field is a constant expansion).
let private perturbed (g: Generator) (p: Params) = p.Map(fun a -> a + Draw.normal g a.shape * 0.5)

[<Fact>]
let ``the Galerkin field is the MLP whose weights are Σ α_k ψ_k(t), computed element by element`` () =
    Gens.check 4 (Gen.zip3 Gens.seed (Gen.choose (1, 3)) (Gen.elements [ false; true ])) (fun (seed, dim, timeInput) ->
        let g = Draw.generator seed
        let endTime = 1.5
        for basis in bases do
            let p = Galerkin.create g Dtype.Float64 basis dim [ 5; 4 ] timeInput |> perturbed g
            let z = Draw.normal g [| 3; dim |]
            let rows = z.toArray64()
            for t in [ 0.1; 0.62; 1.37 ] do
                let psi = closedForm basis endTime t
                let k = psi.Length
                let theta (name: string) (index: int) =
                    let a = p[name].toArray64()
                    let per = a.Length / k
                    Seq.sum (seq { for j in 0 .. k - 1 -> a[j * per + index] * psi[j] })
                let layer (i: int) (input: float[]) (last: bool) =
                    let rowsIn = input.Length
                    let fanOut = p[$"{i}.bias"].shape[1]
                    Array.init fanOut (fun o ->
                        let s = theta $"{i}.bias" o + Seq.sum (seq { for c in 0 .. rowsIn - 1 -> theta $"{i}.weight" (o * rowsIn + c) * input[c] })
                        if last then s else tanh s)
                let expected =
                    Array.init 3 (fun r ->
                        let x = [| yield! rows[r * dim .. r * dim + dim - 1]; if timeInput then yield t |]
                        layer 2 (layer 1 (layer 0 x false) false) true)
                    |> Array.concat
                Close.values $"f({t}, z) for {GalerkinBasis.name basis}" Tolerance.float64 [| 3; dim |] expected
                    (Galerkin.field basis endTime p (Tensor.scalar(t, Dtype.Float64)) z))

// The adjoint and backpropagation are different discretisations of one integral: they agree to
// about the solver tolerance, not to rounding.
let private solver = Solver.Dopri5(Tolerances.uniform 1e-10)

[<Fact>]
let ``a Galerkin neural ODE's adjoint gradients equal backpropagation through the solver in every basis`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        for basis in bases do
            let p = Galerkin.create g Dtype.Float64 basis dim [ 6 ] false |> perturbed g
            let z0 = Draw.normal g [| 4; dim |]
            let weights = Draw.normal g [| 4; dim |]
            let field (theta: Tensor[]) t z = Galerkin.field basis 1.0 (p.WithValues theta) t z
            for t0, t1 in [ 0.0, 1.0; 0.9, 0.2 ] do
                let loss (solveWith: Tensor[] -> Tensor -> Tensor) (xs: Tensor[]) = ((solveWith xs[1..] xs[0]).tanh() * weights).sum()
                let byAdjoint theta z = Adjoint.solve solver SolverOptions.defaults field theta z t0 t1
                let byBackprop theta z = (Ode.solve solver SolverOptions.defaults (field theta) z t0 t1 [||]).Final
                let inputs = Array.append [| z0 |] p.Values
                Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"{GalerkinBasis.name basis}: gradient {i} from t = {t0} to {t1}" { Abs = 1e-6; Rel = 1e-6 } e a)
                    (Ad.gradN (loss byBackprop) inputs) (Ad.gradN (loss byAdjoint) inputs))

[<Fact>]
let ``with one basis function the Galerkin field is the depth-independent MLP field`` () =
    Gens.check 4 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        for basis in [ GalerkinBasis.Fourier 0; GalerkinBasis.PiecewiseConstant 1; GalerkinBasis.Chebyshev 0 ] do
            for timeInput in [ false; true ] do
                let p = Galerkin.create g Dtype.Float64 basis dim [ 7 ] timeInput |> perturbed g
                let plain = p.Map(fun a -> a.reshape a.shape[1..])
                let z = Draw.normal g [| 5; dim |]
                for t in [ 0.0; 0.3; 0.85 ] do
                    let time = Tensor.scalar(t, Dtype.Float64)
                    let expected = if timeInput then Cnf.dynamics plain time z else Mlp.apply Activation.Tanh plain z
                    Close.tensors $"{GalerkinBasis.name basis}, time input {timeInput}, t = {t}" Tolerance.float64 expected
                        (Galerkin.field basis 1.0 p time z))

[<Fact>]
let ``a fresh Galerkin field does not depend on depth in any basis`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        for basis in bases do
            let p = Galerkin.create g Dtype.Float64 basis dim [ 6 ] false
            let z = Draw.normal g [| 4; dim |]
            let at t = Galerkin.field basis 2.0 p (Tensor.scalar(t, Dtype.Float64)) z
            for t in [ 0.4; 1.1; 1.9 ] do
                Close.tensors $"{GalerkinBasis.name basis} at t = {t}" Tolerance.float64 (at 0.05) (at t))

[<Fact>]
let ``a Galerkin CNF in any basis rebuilt from its settings is the same map`` () =
    let g = Draw.generator 3
    for basis in bases @ [ GalerkinBasis.Fourier 0 ] do
        for timeInput in [ false; true ] do
            let options = { GalerkinCnf.defaults with Basis = basis; Hidden = [ 4 ]; TimeInput = timeInput }
            let b = GalerkinCnf.createWith options g Dtype.Float64 2 |> Entry.perturb g 0.1
            let rebuilt = { GalerkinCnf.build Dtype.Float64 b.Settings with Params = b.Params }
            Assert.Equal(basis, GalerkinBasis.parse (Settings.text "basis" b.Settings))
            let x = Draw.normal g [| 3; 2 |]
            let y, logDet = Bijector.forward Context.none x b
            let y', logDet' = Bijector.forward Context.none x rebuilt
            Close.tensors $"{GalerkinBasis.name basis}: z(T)" { Abs = 0.0; Rel = 0.0 } y y'
            Close.tensors $"{GalerkinBasis.name basis}: log-det" { Abs = 0.0; Rel = 0.0 } logDet logDet'

[<Fact>]
let ``an unknown basis name is an error that lists the forms there are`` () =
    let error = Assert.Throws<ArgumentException>(fun () -> GalerkinBasis.parse "legendre:3" |> ignore)
    Assert.Contains("chebyshev:N", error.Message)
