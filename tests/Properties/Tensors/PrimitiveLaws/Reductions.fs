/// Reductions and scans: the VJP of each satisfies the adjoint identity against central
/// differences in float64, along random dimensions with keepDim true and false.
module Flows.Properties.Tensors.PrimitiveLaws.Reductions

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Properties.Support

/// A reduction along `dim`: how its input is drawn and how it is applied.
type private Reduction =
    { Name: string
      // Smallest size of the reduced dimension (std needs two elements to be smooth).
      MinSize: int
      Input: Generator -> int[] -> Tensor
      Apply: int -> bool -> Tensor -> Tensor }

let private tieFree g shape = (Draw.distinct g [| shape |])[0]

let private reduction name minSize input apply = { Name = name; MinSize = minSize; Input = input; Apply = apply }

let private reductions =
    [ reduction "sum" 1 Draw.normal (fun d k x -> x.sum(d, k))
      reduction "mean" 1 Draw.normal (fun d k x -> x.mean(d, k))
      reduction "var (biased)" 1 Draw.normal (fun d k x -> x.var(d, k, false))
      reduction "var (unbiased)" 2 Draw.normal (fun d k x -> x.var(d, k, true))
      reduction "std" 2 Draw.normal (fun d k x -> x.std(d, k))
      reduction "norm" 1 (fun g s -> Draw.awayFromZero g 0.1 s) (fun d k x -> x.norm(d, k))
      reduction "max" 1 tieFree (fun d k x -> x.max(d, k))
      reduction "min" 1 tieFree (fun d k x -> x.min(d, k))
      reduction "logsumexp" 1 (fun g s -> Draw.normal g s * 3.0) (fun d k x -> x.logsumexp(d, k))
      reduction "softmax" 1 (fun g s -> Draw.normal g s * 3.0) (fun d _ x -> x.softmax d)
      reduction "logsoftmax" 1 (fun g s -> Draw.normal g s * 3.0) (fun d _ x -> x.logsoftmax d)
      reduction "cumsum" 1 Draw.normal (fun d reverse x -> x.cumsum(d, reverse)) ]

/// The names of the reductions along a dimension, one theory case each.
let reductionNames : obj[] seq = reductions |> Seq.map (fun r -> [| box r.Name |])

/// A shape of rank 1 to 4, a dimension of it, the keepDim flag (cumsum: reverse) and a seed.
let private alongDim =
    gen {
        let! shape = Gens.shapeOfRank 1 4
        let! dim = Gens.dimOf shape.Length
        let! flag = Gen.elements [ false; true ]
        let! seed = Gens.seed
        return shape, dim, flag, seed
    }

[<Theory; MemberData(nameof reductionNames)>]
let ``Each reduction along a random dimension satisfies the adjoint identity, with and without keepDim`` (name: string) =
    let r = reductions |> List.find (fun r -> r.Name = name)
    Gens.check 100 alongDim (fun (shape, dim, flag, seed) ->
        let shape = shape |> Array.mapi (fun i n -> if i = (dim + shape.Length) % shape.Length then max n r.MinSize else n)
        let x = r.Input (Draw.generator seed) shape
        FiniteDifferences.checkVjp $"{name} along {dim} (flag {flag}) of {Shape.show shape}" seed
            (fun xs -> [| r.Apply dim flag xs[0] |]) [| x |])

/// Whole-tensor reductions and the vector and matrix helpers built on them.
type private Whole = { Name: string; Shape: Gen<int[]>; Input: Generator -> int[] -> Tensor; Apply: Tensor -> Tensor }

let private wholes =
    [ { Name = "sum()"; Shape = Gens.shape; Input = Draw.normal; Apply = _.sum() }
      { Name = "mean()"; Shape = Gens.shape; Input = Draw.normal; Apply = _.mean() }
      { Name = "max()"; Shape = Gens.shape; Input = tieFree; Apply = _.max() }
      { Name = "min()"; Shape = Gens.shape; Input = tieFree; Apply = _.min() }
      { Name = "norm()"; Shape = Gens.shape; Input = (fun g s -> Draw.awayFromZero g 0.1 s); Apply = _.norm() }
      { Name = "dot"; Shape = Gens.shapeOfRank 1 1; Input = Draw.normal; Apply = fun x -> x.dot(x.flip([| 0 |]).sin()) }
      { Name = "outer"; Shape = Gens.shapeOfRank 1 1; Input = Draw.normal; Apply = fun x -> x.outer(x.exp()) }
      { Name = "diagonal"; Shape = Gens.shapeOfRank 2 4; Input = Draw.normal; Apply = _.diagonal() }
      { Name = "diagEmbed"; Shape = Gens.shapeOfRank 1 3; Input = Draw.normal; Apply = _.diagEmbed() }
      { Name = "trace"; Shape = Gens.shapeOfRank 2 4; Input = Draw.normal; Apply = _.trace() } ]

/// The names of the whole-tensor reductions, one theory case each.
let wholeNames : obj[] seq = wholes |> Seq.map (fun w -> [| box w.Name |])

[<Theory; MemberData(nameof wholeNames)>]
let ``Each whole-tensor reduction satisfies the adjoint identity`` (name: string) =
    let w = wholes |> List.find (fun w -> w.Name = name)
    Gens.check 100 (Gen.zip w.Shape Gens.seed) (fun (shape, seed) ->
        let x = w.Input (Draw.generator seed) shape
        FiniteDifferences.checkVjp $"{name} of {Shape.show shape}" seed (fun xs -> [| w.Apply xs[0] |]) [| x |])

[<Fact>]
let ``linear's VJP satisfies the adjoint identity in the input, the weight and the bias`` () =
    let sizes = gen {
        let! batch = Gens.shapeOfRank 0 2
        let! inputs = Gens.size
        let! outputs = Gens.size
        let! seed = Gens.seed
        return batch, inputs, outputs, seed }
    Gens.check 100 sizes (fun (batch, inputs, outputs, seed) ->
        let g = Draw.generator seed
        let x = Draw.normal g (Array.append batch [| inputs |])
        let w, b = Draw.normal g [| outputs; inputs |], Draw.normal g [| outputs |]
        FiniteDifferences.checkVjp $"linear {Shape.show x.shape} by [{outputs}, {inputs}]" seed
            (fun xs -> [| Tensor.linear(xs[0], xs[1], xs[2]) |]) [| x; w; b |])
