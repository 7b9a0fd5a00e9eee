/// The fused affine and additive couplings (one recorded node per layer, FusedCoupling) against the
/// same layers composed from tensor ops (Coupling.layer over Affine's transformers): values and
/// log-determinants both ways, gradients for every input, and the derivatives that must fall back
/// to the composed definition (gradients of gradients, JVPs), over masks, scale maps, activations,
/// depths and contexts, with random (not identity) weights.
module Flows.Properties.Bijectors.FusedCouplingTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Bijectors
open Flows.Nn
open Flows.Tensors
open Flows.Transformers
open Flows.Laws
open Flows.Properties.Support

type private Case =
    { Spec: Coupling.Spec
      Seed: int }

let private masks (dim: int) =
    [ yield Coupling.Mask.Half false
      yield Coupling.Mask.Half true
      yield Coupling.Mask.Alternating false
      yield Coupling.Mask.Alternating true
      if dim = 4 then yield Coupling.Mask.Checkerboard(2, 2, true) ]

let private cases =
    gen {
        let! dim = Gen.choose (2, 6)
        let! mask = Gen.elements (masks dim)
        let! affine, scale =
            Gen.elements [ true, Coupling.ScaleMap.Exp; true, Coupling.ScaleMap.SoftClamp 2.0; true, Coupling.ScaleMap.Sigmoid; false, Coupling.ScaleMap.Exp ]
        let! activation = Gen.elements [ Activation.Relu; Activation.Tanh; Activation.Softplus; Activation.Elu; Activation.LeakyRelu 0.1 ]
        let! hidden = Gen.elements [ [ 5 ]; [ 7; 3 ]; [ 4; 6; 5 ] ]
        let! contextDim = Gen.elements [ 0; 2 ]
        let! seed = Gens.seed
        return
            { Spec = { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp(hidden, activation); ScaleMap = scale; Affine = affine; ContextDim = contextDim }
              Seed = seed }
    }

let private rows = 5

/// The fused layer with random weights, the composed layer with the same weights, an input batch and a context.
let private setUp (case: Case) =
    let g = Draw.generator case.Seed
    let fused = Coupling.create g Dtype.Float64 case.Spec
    let weights = fused.Params.Map(fun v -> Draw.normal g v.shape * 0.7)
    let transformer = if case.Spec.Affine then Affine.transformer (Coupling.logScale case.Spec.ScaleMap) else Affine.additive
    let composed =
        Coupling.layer (Generator 0UL) Dtype.Float64 fused.Name []
            { Dim = case.Spec.Dim; Mask = case.Spec.Mask; Conditioner = case.Spec.Conditioner; Transformer = transformer
              Layout = Coupling.Layout.ByParameter; ContextDim = case.Spec.ContextDim }
    let x = Draw.normal g [| rows; case.Spec.Dim |]
    let context = if case.Spec.ContextDim > 0 then Some(Draw.normal g [| rows; case.Spec.ContextDim |]) else None
    { fused with Params = weights }, { composed with Params = weights }, x, context, g

// The layer's map in one direction as a function of [x; context?; weights...].
let private asFunction (b: Bijector) (inverse: bool) (hasContext: bool) (inputs: Tensor[]) =
    let first = if hasContext then 2 else 1
    let p = b.Params.WithValues inputs[first..]
    let ctx = { Context.none with Condition = (if hasContext then Some inputs[1] else None) }
    let y, logDet = (if inverse then b.Inverse else b.Forward) p ctx inputs[0]
    y, logDet

let private directions = [ false; true ]

[<Fact>]
let ``the fused coupling gives the composed coupling's values, log-determinants and gradients, both ways`` () =
    Gens.check 60 cases (fun case ->
        let fused, composed, x, context, g = setUp case
        let inputs = Array.append (Array.append [| x |] (Option.toArray context)) fused.Params.Values
        let hasContext = context.IsSome
        let w, u = Draw.normal g [| rows; case.Spec.Dim |], Draw.normal g [| rows |]
        for inverse in directions do
            let where = $"{fused.Name} {case.Spec} inverse={inverse}"
            let yF, lF = asFunction fused inverse hasContext inputs
            let yC, lC = asFunction composed inverse hasContext inputs
            Close.tensors $"{where}: values" Tolerance.float64 yC yF
            Close.tensors $"{where}: log-determinants" Tolerance.float64 lC lF
            let loss (b: Bijector) (xs: Tensor[]) = let y, l = asFunction b inverse hasContext xs in (y * w).sum() + (l * u).sum()
            let gradsF = Ad.gradN (loss fused) inputs
            let gradsC = Ad.gradN (loss composed) inputs
            Array.iteri2 (fun i (c: Tensor) (f: Tensor) -> Close.tensors $"{where}: gradient of input {i}" Tolerance.float64 c f) gradsC gradsF)

[<Fact>]
let ``gradients of gradients and JVPs through the fused coupling follow the composed definition`` () =
    Gens.check 20 cases (fun case ->
        let fused, composed, x, context, g = setUp case
        let hasContext = context.IsSome
        let weights = fused.Params.Values
        let v = Draw.normal g [| rows; case.Spec.Dim |]
        for inverse in directions do
            let where = $"{fused.Name} {case.Spec} inverse={inverse}"
            let withInputs (xIn: Tensor) (ws: Tensor[]) = Array.concat [ [| xIn |]; Option.toArray context; ws ]
            // d/dθ of Σ v · ∂(Σ log|det|)/∂x: a level nested over the fused node's own
            let mixed (b: Bijector) (ws: Tensor[]) =
                let gx = Ad.grad (fun xx -> (snd (asFunction b inverse hasContext (withInputs xx ws))).sum()) x
                (gx * v).sum()
            let hF = Ad.gradN (mixed fused) weights
            let hC = Ad.gradN (mixed composed) weights
            Array.iteri2 (fun i (c: Tensor) (f: Tensor) -> Close.tensors $"{where}: mixed second derivative {i}" Tolerance.float64 c f) hC hF
            let map (b: Bijector) (xx: Tensor) = fst (asFunction b inverse hasContext (withInputs xx weights))
            let yF, jvpF = Ad.jvp (map fused) x v
            let yC, jvpC = Ad.jvp (map composed) x v
            Close.tensors $"{where}: JVP values" Tolerance.float64 yC yF
            Close.tensors $"{where}: JVP" Tolerance.float64 jvpC jvpF)
