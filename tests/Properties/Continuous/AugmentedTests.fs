/// Augmented neural ODEs and hypernetwork dynamics: a rotation in one augmented dimension reflects
/// x ↦ −x (closed form), augmented solves round-trip back to [x; 0], no augmentation is the plain
/// solve; the hypernetwork field equals its formula computed element by element.
module Flows.Properties.Continuous.AugmentedTests

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

let private solver = Solver.Dopri5(Tolerances.uniform 1e-10)

[<Fact>]
let ``one augmented dimension lets a rotation by π map x to −x`` () =
    Gens.check 3 Gens.seed (fun seed ->
        let x = Draw.normal (Draw.generator seed) [| 7; 1 |]
        // d(x, a)/dt = (−a, x): a quarter turn per π/2, a half turn at t = π
        let rotation : Dynamics = fun _ z -> Tensor.cat([| -(z.narrow(1, 1, 1)); z.narrow(1, 0, 1) |], 1)
        let y = Augmented.apply solver SolverOptions.defaults 1 rotation x 0.0 Math.PI
        Close.tensors "x ↦ −x" { Abs = 1e-8; Rel = 1e-8 } (-x) y)

[<Fact>]
let ``an augmented neural ODE solved forward and back returns to [x; 0]`` () =
    Gens.check 3 (Gen.zip3 Gens.seed (Gen.choose (1, 3)) (Gen.choose (1, 3))) (fun (seed, dim, extra) ->
        let g = Draw.generator seed
        let p = Augmented.create g Dtype.Float64 dim extra [ 8 ] |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.5)
        let x = Draw.normal g [| 5; dim |]
        let there = (Augmented.solve solver SolverOptions.defaults extra (Cnf.dynamics p) x 0.0 1.0 [||]).Final
        Close.shape "augmented state" [| 5; dim + extra |] there
        let back = (Ode.solve solver SolverOptions.defaults (Cnf.dynamics p) there 1.0 0.0 [||]).Final
        Close.tensors "x" { Abs = 1e-7; Rel = 1e-7 } x (Augmented.project dim back)
        Close.tensors "the augmented zeros" { Abs = 1e-7; Rel = 0.0 } (Tensor.zeros([| 5; extra |], Dtype.Float64)) (back.narrow(1, dim, extra)))

[<Fact>]
let ``with no augmented dimensions the map is the plain neural ODE`` () =
    Gens.check 2 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let p = Augmented.create g Dtype.Float64 dim 0 [ 8 ]
        let x = Draw.normal g [| 4; dim |]
        Close.tensors "the same map" { Abs = 0.0; Rel = 0.0 }
            (Ode.solve solver SolverOptions.defaults (Cnf.dynamics p) x 0.0 0.6 [||]).Final
            (Augmented.apply solver SolverOptions.defaults 0 (Cnf.dynamics p) x 0.0 0.6))

[<Fact>]
let ``the hypernetwork field is (1/width)·Σ σ(G_k)·U_k·tanh(W_k·z + B_k) with W, U, G, B from the net of t`` () =
    Gens.check 4 (Gen.zip3 Gens.seed (Gen.choose (1, 3)) (Gen.choose (1, 4))) (fun (seed, dim, width) ->
        let g = Draw.generator seed
        let p = Hypernet.create g Dtype.Float64 dim width [ 5 ]
        let t, z = 0.35, Draw.normal g [| 3; dim |]
        let o = (Mlp.apply Activation.Tanh (p.Scope "net") (Tensor.full([| 1; 1 |], t, Dtype.Float64))).toArray64()
        let w k i = o[k * dim + i]
        let u k i = o[width * dim + k * dim + i]
        let gate k = 1.0 / (1.0 + exp (-o[2 * width * dim + k]))
        let bias k = o[2 * width * dim + width + k]
        let rows = z.toArray64()
        let expected =
            Array.init (3 * dim) (fun at ->
                let r, i = at / dim, at % dim
                let hidden k = tanh (bias k + Seq.sum (seq { for j in 0 .. dim - 1 -> w k j * rows[r * dim + j] }))
                Seq.sum (seq { for k in 0 .. width - 1 -> gate k * u k i * hidden k }) / float width)
        Close.values "f(t, z)" Tolerance.float64 [| 3; dim |] expected (Hypernet.field p (Tensor.scalar(t, Dtype.Float64)) z))
