/// OT-Flow: the closed-form gradient and Hessian trace of the potential against autodiff (gradient
/// of Φ, Jacobian of that gradient), the velocity −∇Φ, the integrated transport cost and HJB penalty
/// against Gauss–Legendre quadrature along the solved trajectory, the objective's NLL against the
/// bijector's log-density, and its adjoint gradients against backpropagation.
module Flows.Properties.Continuous.OtFlowTests

open Xunit
open FsCheck.FSharp
open MathNet.Numerics.Integration
open Flows
open Flows.Continuous
open Flows.Distributions
open Flows.Ode
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

// A random potential for dimension `dim` with `layers` ResNet layers, away from its initial state.
let private potential (g: Generator) (dim: int) (layers: int) =
    OtPotential.create g Dtype.Float64 dim 6 layers (min 3 (dim + 1)) |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.4)

let private options = { OtFlow.defaults with Width = 6; Rank = 3; Tolerance = 1e-10 }

[<Fact>]
let ``the closed-form gradient of Φ equals autodiff's, and the velocity is −∇_xΦ`` () =
    Gens.check 5 (Gen.zip3 Gens.seed (Gen.choose (1, 4)) (Gen.choose (2, 4))) (fun (seed, dim, layers) ->
        let g = Draw.generator seed
        let p = potential g dim layers
        let x = Draw.normal g [| 5; dim |]
        let t = Tensor.scalar(0.3, Dtype.Float64)
        let gradient, _ = OtPotential.gradientAndTrace p t x
        let byX = Ad.grad (fun x -> (OtPotential.value p t x).sum()) x
        let byT = Ad.grad (fun t -> (OtPotential.value p t x).sum()) t
        Close.tensors "∇_xΦ" Tolerance.float64 byX (gradient.narrow(1, 0, dim))
        // the t-derivative of the rows' sum is the sum of each row's ∂Φ/∂t
        Close.scalar "Σ ∂Φ/∂t" Tolerance.float64 (byT.toScalar()) (gradient.narrow(1, dim, 1).sum().toScalar())
        Close.tensors "velocity" Tolerance.float64 (-byX) (OtFlow.velocity p t x))

[<Fact>]
let ``the closed-form trace of the x-Hessian equals the trace of autodiff's Hessian`` () =
    Gens.check 6 (Gen.zip3 Gens.seed (Gen.choose (1, 4)) (Gen.choose (2, 4))) (fun (seed, dim, layers) ->
        let g = Draw.generator seed
        let p = potential g dim layers
        let x = Draw.normal g [| 4; dim |]
        let t = Tensor.scalar(0.7, Dtype.Float64)
        let _, trace = OtPotential.gradientAndTrace p t x
        let hessians = (Ad.batchJacobian (Ad.grad (fun x -> (OtPotential.value p t x).sum())) x).toArray64()
        let expected = Array.init 4 (fun r -> Seq.sum (seq { for i in 0 .. dim - 1 -> hessians[r * dim * dim + i * dim + i] }))
        Close.arrays $"tr ∇²Φ with {layers} layers" Tolerance.float64 expected (trace.toArray64()))

[<Fact>]
let ``the transport cost and HJB penalty equal quadrature along the trajectory, and the NLL is the bijector's`` () =
    Gens.check 3 (Gen.zip Gens.seed (Gen.choose (1, 3))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let flow = OtFlow.createWith options g Dtype.Float64 dim |> Entry.perturb g 0.3
        let p = flow.Params
        let x = Draw.normal g [| 3; dim |]
        let baseDistribution = Distribution.standardNormal [| dim |] Dtype.Float64
        let loss = OtFlow.objective options { Transport = 0.5; Hjb = 2.0 } baseDistribution p x
        let expectedNll = -((Flow.logProb Context.none x (Flow.create baseDistribution [ flow ])).mean().toScalar())
        Close.scalar "NLL" { Abs = 1e-9; Rel = 1e-9 } expectedNll (loss.Nll.toScalar())
        // Gauss–Legendre on the trajectory; the HJB integrand has kinks where it changes sign, so
        // the comparison allows the quadrature's error there
        let rule = GaussLegendreRule(0.0, options.EndTime, 48)
        let nodes = Array.zip rule.Abscissas rule.Weights |> Array.sortBy fst
        let path = Ode.solve (Solver.Dopri5(Tolerances.uniform 1e-10)) SolverOptions.defaults (OtFlow.velocity p) x 0.0 options.EndTime (Array.map fst nodes)
        let mutable transport, hjb = 0.0, 0.0
        nodes |> Array.iteri (fun k (t, w) ->
            let time = Tensor.scalar(t, Dtype.Float64)
            let z = path.Outputs[k]
            let gx = Ad.grad (fun z -> (OtPotential.value p time z).sum()) z
            let _, gt = Ad.jvp (fun tt -> OtPotential.value p tt z) time (Tensor.scalar(1.0, Dtype.Float64))
            let half = (gx.square().sum(1) * 0.5).toArray64()
            let dt = gt.toArray64()
            transport <- transport + w * Array.sum half / 3.0
            hjb <- hjb + w * (Array.map2 (fun a b -> abs (a - b)) dt half |> Array.sum) / 3.0)
        Close.scalar "transport cost" { Abs = 1e-8; Rel = 1e-7 } transport (loss.Transport.toScalar())
        Close.scalar "HJB penalty" { Abs = 1e-4; Rel = 1e-3 } hjb (loss.Hjb.toScalar())
        Close.scalar "the loss" Tolerance.float64 (loss.Nll.toScalar() + 0.5 * loss.Transport.toScalar() + 2.0 * loss.Hjb.toScalar()) (loss.Loss.toScalar()))

[<Fact>]
let ``OT-Flow's objective has the same gradients by the adjoint as by backpropagation`` () =
    Gens.check 1 (Gen.zip Gens.seed (Gen.choose (1, 2))) (fun (seed, dim) ->
        let g = Draw.generator seed
        let options = { options with Width = 4; EndTime = 0.5 }
        let p = (OtFlow.createWith options g Dtype.Float64 dim |> Entry.perturb g 0.3).Params
        let x = Draw.normal g [| 2; dim |]
        let baseDistribution = Distribution.standardNormal [| dim |] Dtype.Float64
        // |∂_tΦ − ½‖∇Φ‖²| has kinks where the residual changes sign: the adjoint's backward solve
        // meets them at other steps than the forward one, so with the HJB term the two gradients
        // agree to about 1e-2 relative (measured 3e-3), without it to the solver tolerance
        for weights, close in [ { Transport = 1.0; Hjb = 0.0 }, { Abs = 1e-6; Rel = 1e-6 }; { Transport = 1.0; Hjb = 0.5 }, { Abs = 1e-5; Rel = 1e-2 } ] do
            let loss gradient (values: Tensor[]) =
                (OtFlow.objective { options with Gradient = gradient } weights baseDistribution (p.WithValues values) x).Loss
            Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient of {p.Names[i]} with α_R = {weights.Hjb}" close e a)
                (Ad.gradN (loss CnfGradient.Backprop) p.Values) (Ad.gradN (loss CnfGradient.Adjoint) p.Values))
