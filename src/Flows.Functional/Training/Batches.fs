namespace Flows.Training

open System.Threading
open Flows
open Flows.Tensors
open Flows.Tensors.Backend

/// Training batches: a data set's epoch-shuffled mini-batches, a sampler's draws, a rank's shard of
/// the global batches.
[<RequireQualifiedAccess>]
module Batches =

    /// The batch-drawing function of a source: a sampler's draws (each step from its own generator),
    /// or a data set reshuffled by `gen` every epoch and served `batchSize` rows at a time.
    let rec ofSource (seed: uint64) (gen: Generator) (batchSize: int) (source: DataSource) : unit -> Tensor =
        match source with
        | DataSource.Sampler draw ->
            // Step k draws from its own generator, so the batches do not depend on timing; the next
            // batch is drawn on the other core while this step trains.
            let drawAt (step: int) = draw (Generator(Counter.bits seed (uint64 step))) batchSize
            let mutable step = 0
            let mutable pending = Tasks.Task.Run(fun () -> drawAt 0)
            fun () ->
                let batch = pending.Result
                step <- step + 1
                let next = step
                pending <- Tasks.Task.Run(fun () -> drawAt next)
                batch
        | DataSource.Conditional(data, context) -> ofSource seed gen batchSize (DataSource.Dataset(Tensor.cat([| data; context |], 1)))
        | DataSource.Sharded _ -> invalidArg (nameof source) "a sharded source is batched with its collective (Batches.ofShard)"
        | DataSource.Dataset data ->
            let n = data.shape[0]
            Guard.that (nameof source) (n > 0) "the data set is empty"
            let size = min batchSize n
            // the order is drawn on the host and moved once per epoch to where the data lives
            let permutation () = (gen.permutation n).moveTo data.device
            let mutable order = permutation ()
            let mutable at = 0
            fun () ->
                if at + size > n then
                    order <- permutation ()
                    at <- 0
                let index = order.narrow(0, at, size)
                at <- at + size
                let shaped = index.reshape(Array.append [| size |] (Array.create (data.dim - 1) 1)).expand(Array.append [| size |] data.shape[1..])
                data.gather(0, shaped)

    /// The batches of this rank's shard of `total` rows: every rank draws the same permutation of the
    /// global rows each epoch (from a generator of its own, so noise drawn elsewhere cannot make the
    /// ranks disagree), takes the next `batchSize` of them and gathers those it holds. Each call gives
    /// the local rows ([x | c] for a conditional shard; possibly none) and the global batch size.
    let ofShard (seed: uint64) (collective: ICollective) (batchSize: int) (rows: Tensor) (context: Tensor option) (total: int) : unit -> Tensor * int =
        let data = match context with Some c -> Tensor.cat([| rows; c |], 1) | None -> rows
        let rank, ranks = collective.Rank, collective.Size
        Guard.that (nameof total) (total > 0) "the table is empty"
        let held = (total - rank + ranks - 1) / ranks
        Guard.that (nameof rows) (data.shape[0] = held)
            $"rank {rank} of {ranks} should hold {held} of the {total} rows (every {ranks}th from row {rank}), got {data.shape[0]}"
        let size = min batchSize total
        let gen = Generator(seed ^^^ 0x5A4D0UL)
        let mutable order = gen.permutation(total).toArrayInt()
        let mutable at = 0
        fun () ->
            if at + size > total then
                order <- gen.permutation(total).toArrayInt()
                at <- 0
            let local = [| for i in at .. at + size - 1 do if order[i] % ranks = rank then order[i] / ranks |]
            at <- at + size
            let shape = Array.append [| local.Length |] data.shape[1..]
            let index = Tensor.ofArray(local, device = data.device).reshape(Array.append [| local.Length |] (Array.create (data.dim - 1) 1)).expand shape
            data.gather(0, index), size

    /// Rows [x | c] as x and a context holding c (width `contextDim`); plain rows when there is none.
    let splitContext (contextDim: int) (ctx: Context) (rows: Tensor) =
        if contextDim = 0 || rows.numel = 0 then rows, ctx
        else
            let d = rows.shape[1] - contextDim
            rows.narrow(1, 0, d), { ctx with Condition = Some(rows.narrow(1, d, contextDim)) }
