/// Shape, layout and indexing ops: the VJP of each satisfies the adjoint identity against central
/// differences in float64 on random shapes and random op parameters.
module Flows.Properties.Tensors.PrimitiveLaws.ShapeOps

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

// One input, outputs as an array (split and unstack have several).
let private adjoint what seed (f: Tensor -> Tensor[]) (x: Tensor) =
    FiniteDifferences.checkVjp what seed (fun xs -> f xs[0]) [| x |]

// A shape of rank `low` to `high`, parameters drawn from it, and a data seed.
let private withParameters low high (parameters: int[] -> Gen<'P>) =
    gen {
        let! shape = Gens.shapeOfRank low high
        let! p = parameters shape
        let! seed = Gens.seed
        return shape, p, seed
    }

let private check parameters low high (apply: 'P -> Tensor -> Tensor[]) =
    Gens.check 100 (withParameters low high parameters) (fun (shape, p, seed) ->
        adjoint $"{Shape.show shape} with {p}" seed (apply p) (Draw.normal (Draw.generator seed) shape))

[<Fact>]
let ``reshape to a shuffled shape, with or without a -1, satisfies the adjoint identity`` () =
    let target shape =
        gen {
            let! shuffled = Gen.shuffle shape
            let! unknown = Gen.choose (-1, shuffled.Length - 1)
            return shuffled |> Array.mapi (fun i d -> if i = unknown then -1 else d)
        }
    check target 0 4 (fun t x -> [| x.reshape t |])

[<Fact>]
let ``unsqueeze and squeeze at a random dimension satisfy the adjoint identity`` () =
    check (fun s -> Gen.choose (0, s.Length)) 0 3 (fun d x -> [| x.unsqueeze d; x.unsqueeze(d).squeeze d |])

[<Fact>]
let ``permute and transpose satisfy the adjoint identity`` () =
    let dims (s: int[]) = Gen.zip (Gen.shuffle [| 0 .. s.Length - 1 |]) (Gens.dimOf s.Length)
    check dims 1 4 (fun (order, d) x -> [| x.permute order; x.transpose(0, d) |])

[<Fact>]
let ``narrow and slice (empty boxes included) satisfy the adjoint identity`` () =
    let box (s: int[]) =
        gen {
            let! starts = s |> Array.map (fun n -> Gen.choose (0, n - 1)) |> Gen.sequenceToArray
            let! lengths = Array.map2 (fun n st -> Gen.choose (0, n - st)) s starts |> Gen.sequenceToArray
            let! d = Gen.choose (0, s.Length - 1)
            return starts, lengths, d
        }
    check box 1 4 (fun (starts, lengths, d) x -> [| x.slice(starts, lengths); x.narrow(d, starts[d], lengths[d]) |])

[<Fact>]
let ``pad with a constant and flip satisfy the adjoint identity`` () =
    let widths (s: int[]) =
        gen {
            let! before = Gen.arrayOfLength s.Length (Gen.choose (0, 2))
            let! after = Gen.arrayOfLength s.Length (Gen.choose (0, 2))
            let! flipped = Gen.subListOf [ 0 .. s.Length - 1 ]
            return before, after, Array.ofList flipped
        }
    check widths 0 4 (fun (before, after, flipped) x -> [| x.pad(before, after, 0.75); x.flip flipped |])

[<Fact>]
let ``tril and triu at a random diagonal satisfy the adjoint identity`` () =
    check (fun _ -> Gen.choose (-3, 3)) 2 4 (fun k x -> [| x.tril k; x.triu k |])

[<Fact>]
let ``split and unstack along a random dimension satisfy the adjoint identity`` () =
    let pieces (s: int[]) =
        gen {
            let! d = Gen.choose (0, s.Length - 1)
            let! cut = Gen.choose (0, s[d])
            return d, (if cut = 0 || cut = s[d] then [| s[d] |] else [| cut; s[d] - cut |])
        }
    check pieces 1 4 (fun (d, sizes) x -> Array.append (x.split(sizes, d)) (x.unstack d))

[<Fact>]
let ``cat and stack of several tensors satisfy the adjoint identity`` () =
    let parts =
        gen {
            let! shape = Gens.shapeOfRank 1 3
            let! d = Gen.choose (0, shape.Length - 1)
            let! sizes = Gen.arrayOfLength 3 (Gen.choose (1, 3))
            let! seed = Gens.seed
            return shape, d, sizes, seed
        }
    Gens.check 100 parts (fun (shape, d, sizes, seed) ->
        let g = Draw.generator seed
        let catted = sizes |> Array.map (fun n -> Draw.normal g (shape |> Array.mapi (fun i m -> if i = d then n else m)))
        FiniteDifferences.checkVjp $"cat of {sizes} along {d}" seed (fun xs -> [| Tensor.cat(xs, d) |]) catted
        let stacked = sizes |> Array.map (fun _ -> Draw.normal g shape)
        FiniteDifferences.checkVjp $"stack along {d} of {Shape.show shape}" seed (fun xs -> [| Tensor.stack(xs, d) |]) stacked)

[<Fact>]
let ``expand and sumTo between broadcastable shapes satisfy the adjoint identity`` () =
    Gens.check 100 (Gen.zip (Gens.broadcastShapes 2) Gens.seed) (fun (shapes, seed) ->
        let small = shapes[0]
        let full = Shape.broadcast "test" shapes[0] shapes[1]
        let g = Draw.generator seed
        adjoint $"expand {Shape.show small} to {Shape.show full}" seed (fun x -> [| x.expand full |]) (Draw.normal g small)
        adjoint $"sumTo {Shape.show small} from {Shape.show full}" seed (fun x -> [| x.sumTo small |]) (Draw.normal g full))

// The index has the input's shape except along `dim`, where it is 1 to 6 long: longer than the
// dimension whenever it exceeds it, so indices repeat.
let private indexing =
    gen {
        let! shape = Gens.shapeOfRank 1 3
        let! d = Gen.choose (0, shape.Length - 1)
        let! m = Gen.choose (1, 6)
        let! seed = Gens.seed
        return shape, d, shape |> Array.mapi (fun i n -> if i = d then m else n), seed
    }

[<Fact>]
let ``gather with repeated indices satisfies the adjoint identity`` () =
    Gens.check 100 indexing (fun (shape, d, indexShape, seed) ->
        let g = Draw.generator seed
        let index = g.integers(indexShape, 0, shape[d])
        adjoint $"gather along {d} of {Shape.show shape} by {Shape.show indexShape}" seed
            (fun x -> [| x.gather(d, index) |]) (Draw.normal g shape))

[<Fact>]
let ``scatterAdd with repeated indices satisfies the adjoint identity`` () =
    Gens.check 100 indexing (fun (shape, d, indexShape, seed) ->
        let g = Draw.generator seed
        let index = g.integers(indexShape, 0, shape[d])
        adjoint $"scatterAdd along {d} into {Shape.show shape} from {Shape.show indexShape}" seed
            (fun x -> [| x.scatterAdd(d, index, shape) |]) (Draw.normal g indexShape))

[<Fact>]
let ``cast's VJP converts the cotangent back to the input's dtype`` () =
    Gens.check 30 (Gen.zip Gens.shape Gens.seed) (fun (shape, seed) ->
        let g = Draw.generator seed
        let x, c = Draw.normal g shape, g.normal(shape, dtype = Dtype.Float32)
        let y, pullback = Ad.vjp (fun x -> x.cast Dtype.Float32) x
        if y.dtype <> Dtype.Float32 then failwith $"cast gave {y.dtype}"
        let adjoint = pullback c
        if adjoint.dtype <> Dtype.Float64 then failwith $"the adjoint of cast came back as {adjoint.dtype}"
        Close.values "adjoint of cast" { Abs = 0.0; Rel = 0.0 } shape (c.toArray64()) adjoint)
