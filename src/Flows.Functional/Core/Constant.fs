namespace Flows

open System.Collections.Concurrent
open Flows.Tensors

/// A fixed tensor a layer builds once (a mask, quadrature nodes, an index), copied to each device
/// and dtype it is used with only the first time: on a GPU every later call finds it there, where
/// `moveTo` on each call would copy it from the host again.
[<Sealed>]
type Constant(value: Tensor) =
    let copies = ConcurrentDictionary<struct (Device * Dtype), Tensor>()

    /// Builds the constant from a host array (float values are cast per use; int32 indices keep their dtype).
    static member ofArray(values: float[], shape: int[]) = Constant(Tensor.ofArray(values, shape))
    /// An int32 index constant.
    static member ofIndices(values: int[]) = Constant(Tensor.ofArray values)

    /// The value on `like`'s device, as `like`'s dtype (indices stay int32).
    member _.Like(like: Tensor) : Tensor =
        let dtype = if value.dtype = Dtype.Int32 then Dtype.Int32 else like.dtype
        copies.GetOrAdd(struct (like.device, dtype), fun struct (device, dtype) -> value.cast(dtype).moveTo device)

    /// The value as built (on the CPU).
    member _.Value = value
