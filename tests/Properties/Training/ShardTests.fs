/// Shards of a table spread over ranks (without MPI: each rank's view built from its index): every
/// rank draws the same global batches, and the ranks' rows together are each global batch exactly once.
module Flows.Properties.Training.ShardTests

open Xunit
open FsCheck
open FsCheck.Xunit
open Flows.Tensors
open Flows.Training

// The collective of rank `rank` of `ranks`, for batching only (batching never communicates).
let private rankOf (rank: int) (ranks: int) =
    { new ICollective with
        member _.Rank = rank
        member _.Size = ranks
        member _.SumInPlace _ = failwith "batching does not sum"
        member _.Broadcast _ = failwith "batching does not broadcast" }

// Any table of 1–400 rows over 1–5 ranks with batches of 1–100 rows, replayable from the seed.
[<Property(MaxTest = 40, Replay = "(20240917,1)")>]
let ``the ranks' rows of each step are the one-process batch, every row exactly once`` (NonNegativeInt rowsDrawn) (NonNegativeInt ranksDrawn) (NonNegativeInt batchDrawn) =
    let total, ranks, batch = 1 + rowsDrawn % 400, 1 + ranksDrawn % 5, 1 + batchDrawn % 100
    // row i holds the value i, so rows are told apart by value
    let table = Tensor.arange(total, Dtype.Float64).reshape [| total; 1 |]
    let shardOf rank = Tensor.ofArray([| for i in rank .. ranks .. total - 1 -> float i |], [| (total - rank + ranks - 1) / ranks; 1 |])
    let whole = Batches.ofShard 9UL Collective.single batch table None total
    let shards = [ for r in 0 .. ranks - 1 -> Batches.ofShard 9UL (rankOf r ranks) batch (shardOf r) None total ]
    // three epochs' worth of steps, so that reshuffles are crossed
    for _ in 1 .. 3 * (total + batch - 1) / batch do
        let expected, size = whole ()
        Assert.Equal(min batch total, size)
        let parts = shards |> List.map (fun draw -> draw ())
        for _, globalRows in parts do Assert.Equal(size, globalRows)
        let got = parts |> List.collect (fun (rows, _) -> List.ofArray (rows.toArray64())) |> List.sort
        Assert.Equal<float list>(List.sort (List.ofArray (expected.toArray64())), got)
        Assert.Equal(size, List.length (List.distinct got))

[<Fact>]
let ``a shard of the wrong size names the rank and what it should hold`` () =
    let e = Assert.Throws<System.ArgumentException>(fun () ->
        Batches.ofShard 1UL (rankOf 1 2) 8 (Tensor.zeros [| 10; 1 |]) None 301 |> ignore)
    Assert.Contains("rank 1 of 2 should hold 150 of the 301 rows", e.Message)

[<Fact>]
let ``a conditional shard's batches keep each row beside its own context`` () =
    // row i holds i, its context 1000 + i and −i: a row and its context agree exactly when they line up
    let total, ranks = 101, 3
    let rowsOf rank = [| for i in rank .. ranks .. total - 1 -> float i |]
    for rank in 0 .. ranks - 1 do
        let x = rowsOf rank
        let rows = Tensor.ofArray(x, [| x.Length; 1 |])
        let context = Tensor.ofArray(x |> Array.collect (fun v -> [| 1000.0 + v; -v |]), [| x.Length; 2 |])
        let draw = Batches.ofShard 9UL (rankOf rank ranks) 16 rows (Some context) total
        for _ in 1 .. 20 do
            let batch, _ = draw ()
            Assert.Equal(3, batch.shape[1])
            let v = batch.toArray64()
            for r in 0 .. batch.shape[0] - 1 do
                Assert.Equal(v[3 * r] + 1000.0, v[3 * r + 1])
                Assert.Equal(-v[3 * r], v[3 * r + 2])
                Assert.Equal(rank, int v[3 * r] % ranks)
