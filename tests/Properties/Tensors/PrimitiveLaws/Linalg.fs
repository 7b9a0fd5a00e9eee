/// Linear algebra, fused and user primitives: batched broadcast matmul, triangular solves in every
/// variant, slogdet, inverse, the fused dense layer and a custom op satisfy the adjoint identity in float64.
module Flows.Properties.Tensors.PrimitiveLaws.Linalg

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Laws
open Flows.Properties.Support

/// Batch shapes that broadcast together (rank 0 to 2 each) and a matrix size.
let private batched =
    gen {
        let! shapes = Gens.broadcastShapes 2
        let batches = shapes |> Array.map (fun s -> s[max 0 (s.Length - 2) ..])
        let! m = Gens.size
        let! k = Gens.size
        let! n = Gens.size
        let! seed = Gens.seed
        return batches[0], batches[1], (m, k, n), seed
    }

[<Fact>]
let ``matmul with broadcast batch dimensions satisfies the adjoint identity`` () =
    Gens.check 100 batched (fun (batchA, batchB, (m, k, n), seed) ->
        let g = Draw.generator seed
        let a = Draw.normal g (Array.append batchA [| m; k |])
        let b = Draw.normal g (Array.append batchB [| k; n |])
        FiniteDifferences.checkVjp $"matmul {Shape.show a.shape} x {Shape.show b.shape}" seed
            (fun xs -> [| xs[0].matmul xs[1] |]) [| a; b |])

[<Fact>]
let ``matmul with vector operands satisfies the adjoint identity`` () =
    Gens.check 100 batched (fun (batch, _, (m, k, _), seed) ->
        let g = Draw.generator seed
        let matrix = Draw.normal g (Array.append batch [| m; k |])
        let v, w = Draw.normal g [| k |], Draw.normal g [| m |]
        let f (xs: Tensor[]) = [| xs[0].matmul xs[1]; xs[2].matmul xs[0]; xs[1].matmul(xs[1].exp()) |]
        FiniteDifferences.checkVjp $"matmul of {Shape.show matrix.shape} with vectors" seed f [| matrix; v; w |])

[<Fact>]
let ``solveTriangular satisfies the adjoint identity for upper and lower, transposed, unit and broadcast batches`` () =
    let variants = Gen.zip3 (Gen.elements [ false; true ]) (Gen.elements [ false; true ]) (Gen.elements [ false; true ])
    Gens.check 100 (Gen.zip batched variants) (fun ((batchA, batchB, (n, cols, _), seed), (upper, transpose, unit)) ->
        let g = Draw.generator seed
        // The entries outside the triangle are random: the solve must ignore them, and so must the adjoint.
        let a = Draw.wellConditioned g batchA n + Draw.normal g (Array.append batchA [| n; n |]) * 0.1
        let b = Draw.normal g (Array.append batchB [| n; cols |])
        FiniteDifferences.checkVjp
            $"solveTriangular {Shape.show a.shape} \\ {Shape.show b.shape} (upper {upper}, transpose {transpose}, unit {unit})" seed
            (fun xs -> [| xs[0].solveTriangular(xs[1], upper, transpose, unit) |]) [| a; b |])

let private squares =
    gen {
        let! batch = Gens.shapeOfRank 0 2
        let! n = Gens.size
        let! seed = Gens.seed
        return batch, n, seed
    }

[<Fact>]
let ``log abs det from slogdet satisfies the adjoint identity`` () =
    Gens.check 100 squares (fun (batch, n, seed) ->
        let a = Draw.wellConditioned (Draw.generator seed) batch n
        FiniteDifferences.checkVjp $"slogdet of {Shape.show a.shape}" seed (fun xs -> [| snd (xs[0].slogdet()) |]) [| a |])

[<Fact>]
let ``inverse satisfies the adjoint identity`` () =
    Gens.check 100 squares (fun (batch, n, seed) ->
        let a = Draw.wellConditioned (Draw.generator seed) batch n
        FiniteDifferences.checkVjp $"inverse of {Shape.show a.shape}" seed (fun xs -> [| xs[0].inverse() |]) [| a |])

/// x³ as a custom primitive: raw forward, hand-written backward 3x² adj.
let cube (x: Tensor) =
    let forward (raw: RawTensor[]) = [| raw[0].Binary(BinaryOp.Mul, raw[0]).Binary(BinaryOp.Mul, raw[0]) |]
    let backward (inputs: Tensor[]) (_: Tensor[]) (adjoints: Tensor[]) = [| adjoints[0] * inputs[0].square() * 3.0 |]
    (Tensor.custom([| x |], forward, backward))[0]

[<Fact>]
let ``A custom op's hand-written backward satisfies the adjoint identity`` () =
    Gens.check 100 (Gen.zip Gens.shape Gens.seed) (fun (shape, seed) ->
        let x = Draw.normal (Draw.generator seed) shape
        FiniteDifferences.checkVjp $"custom cube on {Shape.show shape}" seed (fun xs -> [| cube xs[0] |]) [| x |])

/// The activations a dense layer fuses, with the unfused op each stands for.
let private activations =
    [ Activation.Identity, id
      Activation.Tanh, (fun (x: Tensor) -> x.tanh())
      Activation.Sigmoid, (fun (x: Tensor) -> x.sigmoid())
      Activation.Relu, (fun (x: Tensor) -> x.relu())
      Activation.LeakyRelu 0.1, (fun (x: Tensor) -> x.leakyRelu 0.1)
      Activation.Softplus, (fun (x: Tensor) -> x.softplus())
      Activation.Elu 1.3, (fun (x: Tensor) -> x.elu 1.3) ]

[<Fact>]
let ``dense with each activation equals its unfused form and satisfies the adjoint identity to second order`` () =
    let layers = gen {
        let! rows, inputs, outputs = Gen.zip3 Gens.size Gens.size Gens.size
        let! which = Gen.choose (0, activations.Length - 1)
        let! seed = Gens.seed
        return rows, inputs, outputs, which, seed }
    Gens.check 100 layers (fun (rows, inputs, outputs, which, seed) ->
        let activation, unfused = activations[which]
        let g = Draw.generator seed
        let x, w, b = Draw.normal g [| rows; inputs |], Draw.normal g [| outputs; inputs |], Draw.normal g [| outputs |]
        let pre = Tensor.linear(x, w, b)
        // Relu, leakyRelu and elu have a kink at 0: keep every pre-activation away from it.
        if pre.toArray64() |> Array.forall (fun v -> abs v > 1e-3) then
            let what = $"dense {activation} on [{rows}, {inputs}] to {outputs}"
            Close.tensors what Tolerance.float64 (unfused pre) (Tensor.dense(x, w, b, activation))
            let f (xs: Tensor[]) = Tensor.dense(xs[0], xs[1], xs[2], activation)
            FiniteDifferences.checkVjp what seed (fun xs -> [| f xs |]) [| x; w; b |]
            FiniteDifferences.checkVjpOfVjp what seed f [| x; w; b |])

[<Fact>]
let ``affineMap equals its unfused form and satisfies the adjoint identity to second order`` () =
    let cases = gen {
        let! shape = Gens.shapeOfRank 1 3
        let! inverse = Gen.elements [ true; false ]
        let! seed = Gens.seed
        return shape, inverse, seed }
    Gens.check 60 cases (fun (shape, inverse, seed) ->
        let g = Draw.generator seed
        let x, t, s = Draw.normal g shape, Draw.normal g shape, Draw.normal g shape
        let what = $"affineMap inverse={inverse} on {Shape.show shape}"
        let unfused = if inverse then (x - t) * (-s).exp() else x * s.exp() + t
        Close.tensors what Tolerance.float64 unfused (Tensor.affineMap(x, t, s, inverse))
        let f (xs: Tensor[]) = Tensor.affineMap(xs[0], xs[1], xs[2], inverse)
        FiniteDifferences.checkVjp what seed (fun xs -> [| f xs |]) [| x; t; s |]
        FiniteDifferences.checkVjpOfVjp what seed f [| x; t; s |])
