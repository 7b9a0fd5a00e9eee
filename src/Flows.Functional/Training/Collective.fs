namespace Flows.Training

/// The processes training one model together (data parallelism): each holds a shard of the rows,
/// and sums over all of them go through the collective. `Flows.Distributed` implements it on MPI;
/// `Collective.single` is one process alone.
type ICollective =
    /// This process's index, 0 … Size − 1; rank 0 reports and writes.
    abstract Rank: int
    /// How many processes train.
    abstract Size: int
    /// Replaces every element by its sum over the processes (float64).
    abstract SumInPlace: values: float[] -> unit
    /// Replaces the values by rank 0's.
    abstract Broadcast: values: float[] -> unit

/// Collectives that need no communication.
[<RequireQualifiedAccess>]
module Collective =

    /// One process alone: sums and broadcasts leave values as they are.
    let single =
        { new ICollective with
            member _.Rank = 0
            member _.Size = 1
            member _.SumInPlace _ = ()
            member _.Broadcast _ = () }
