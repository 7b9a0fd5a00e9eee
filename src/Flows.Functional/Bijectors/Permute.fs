/// Fixed permutations of the features: y = x[:, perm] (forward), x = y[:, perm⁻¹] (inverse);
/// log|det J| = 0. Used between coupling layers so every feature gets transformed.
module Flows.Bijectors.Permute

open Flows
open Flows.Tensors

/// A permutation given as the source index of each output feature.
let create (perm: int[]) =
    let dim = perm.Length
    Guard.that (nameof perm) (dim > 0 && Array.sort perm = Array.init dim id) $"expected a permutation of 0..{dim - 1}, got {Shape.show perm}"
    let inverse = Array.zeroCreate dim
    perm |> Array.iteri (fun i p -> inverse[p] <- i)
    let apply (order: int[]) =
        let index = Constant.ofIndices order
        fun (_: Params) (_: Context) (x: Tensor) ->
            x.gather(1, (index.Like x).unsqueeze(0).expand x.shape), Bijector.zeroLogDet x
    Bijector.create "permute" (Settings.ofList [ "perm", Setting.Ints perm ]) [| dim |] Params.empty (apply perm) (apply inverse)

/// Reverses the feature order.
let reverse (dim: int) = create (Array.init dim (fun i -> dim - 1 - i))

/// Swaps the two halves (normflows' "swap"): the second half first.
let swap (dim: int) =
    let half = dim / 2
    create (Array.init dim (fun i -> (i + half) % dim))

/// A random permutation drawn from `gen`.
let random (gen: Generator) (dim: int) = create (gen.permutation(dim).toArrayInt())

[<CatalogueEntry>]
let entry =
    Entry.exact "permute" (fun _ s -> create (Settings.ints "perm" s)) (fun g _ d -> random g d)
