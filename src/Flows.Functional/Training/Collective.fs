namespace Flows.Training

open Flows.Tensors

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

/// A collective that can sum and broadcast buffers where they live on a GPU (a CUDA-aware MPI), so
/// that a GPU model's gradients need not be staged through host memory.
type IDeviceCollective =
    /// Whether buffers on `device` go to the collective as they are (false: stage them on the host).
    abstract OnDevice: device: Device -> bool
    /// The sums over the processes of a float64 tensor on such a device. The collective may write them
    /// into the tensor's own storage and return it: pass a fresh tensor that nothing else holds.
    abstract Sum: values: Tensor -> Tensor
    /// Rank 0's values of a float64 tensor on such a device, written as `Sum`'s are.
    abstract Broadcast: values: Tensor -> Tensor

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

    /// The collective as an `IDeviceCollective` when it passes buffers on `device` as they are.
    let onDevice (device: Device) (collective: ICollective) =
        match collective with
        | :? IDeviceCollective as d when d.OnDevice device -> Some d
        | _ -> None
