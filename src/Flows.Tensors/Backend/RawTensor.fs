namespace Flows.Tensors.Backend

open System
open Flows.Tensors

/// Raw storage plus raw ops on one device: no autodiff here. Every op returns a new tensor;
/// storage is never written after construction, so `Reshape` may share it. Op code never reads
/// single elements: data leaves a device only through `ToArray`, which is what lets a GPU backend
/// run asynchronously behind this interface.
[<AbstractClass>]
type RawTensor(shape: int[], dtype: Dtype, device: Device) =
    do AllocationBudget.Charge(shape, dtype)
    /// Dimensions, row-major.
    member _.Shape = shape
    /// Element type.
    member _.Dtype = dtype
    /// Where the storage lives.
    member _.Device = device
    /// Number of dimensions.
    member _.Rank = shape.Length
    /// Number of elements.
    member _.Numel = Shape.numel shape

    /// The backend that made this tensor, for creating tensors on the same device.
    abstract Backend: IBackend
    /// Copies the elements out as a flat row-major array (float32[], float[] or int[]).
    abstract ToArray: unit -> Array
    /// Same elements, another shape (same element count); may share storage.
    abstract Reshape: shape: int[] -> RawTensor
    /// The identity of the storage: two raw tensors that share memory return the same object.
    abstract Storage: obj
    /// Converts the elements to another dtype.
    abstract Cast: dtype: Dtype -> RawTensor
    /// Element-wise map.
    abstract Unary: op: UnaryOp -> RawTensor
    /// Element-wise binary map with broadcasting.
    abstract Binary: op: BinaryOp * other: RawTensor -> RawTensor
    /// `this` where `condition` is non-zero, else `other`, with broadcasting of all three.
    abstract Where: condition: RawTensor * other: RawTensor -> RawTensor
    /// Reduction along `dim`.
    abstract Reduce: op: ReduceOp * dim: int * keepDim: bool -> RawTensor
    /// Sums over the dimensions that broadcasting to this tensor's shape added or stretched.
    abstract SumTo: shape: int[] -> RawTensor
    /// Broadcasts to a larger shape (materialised).
    abstract Expand: shape: int[] -> RawTensor
    /// Reorders dimensions: result dimension i is source dimension `dims[i]`.
    abstract Permute: dims: int[] -> RawTensor
    /// The box starting at `starts` with sizes `lengths`.
    abstract Slice: starts: int[] * lengths: int[] -> RawTensor
    /// Surrounds with `value`: `before[i]` and `after[i]` elements along dimension i.
    abstract Pad: before: int[] * after: int[] * value: float -> RawTensor
    /// Reverses the order along the given dimensions.
    abstract Flip: dims: int[] -> RawTensor
    /// Inclusive prefix sum along `dim`; from the end when `reverse`.
    abstract Cumsum: dim: int * reverse: bool -> RawTensor
    /// result[..i..] = this[..index[..i..]..] along `dim` (index is int32, same rank).
    abstract Gather: dim: int * index: RawTensor -> RawTensor
    /// A zero tensor of `shape` with `this` added at `index` along `dim`; repeated indices add up.
    abstract ScatterAdd: dim: int * index: RawTensor * shape: int[] -> RawTensor
    /// For each value, the number of entries of the sorted last-dimension row that are below it
    /// (`right`: at or below it); the rows of `this` broadcast against the leading dims of `values`.
    abstract SearchSorted: values: RawTensor * right: bool -> RawTensor
    /// Batched product op(this) x op(other) with broadcast batch dimensions.
    abstract MatMul: other: RawTensor * transA: bool * transB: bool -> RawTensor
    /// Keeps the lower (or upper) triangle from diagonal `k` on, zeroes the rest; batched.
    abstract Triangle: lower: bool * k: int -> RawTensor
    /// Solves op(this) X = b for X with this triangular; batched with broadcasting.
    abstract SolveTriangular: b: RawTensor * upper: bool * transpose: bool * unitDiagonal: bool -> RawTensor
    /// LU with partial pivoting: packed LU (unit lower below the diagonal), the permutation as int32
    /// rows (P A = L U), and the permutation's sign per matrix.
    abstract Lu: unit -> RawTensor * RawTensor * RawTensor
    /// Fused dense layer act(this · weightᵀ + bias) for this [n, in], weight [out, in], bias [out].
    abstract Dense: weight: RawTensor * bias: RawTensor * activation: Activation -> RawTensor
    /// adjoint · act'(pre) computed from the activation output (this), in one pass.
    abstract ActivationGrad: activation: Activation * adjoint: RawTensor -> RawTensor

/// Creates raw tensors on one device.
and IBackend =
    /// The device this backend serves.
    abstract Device: Device
    /// A tensor filled with `value`.
    abstract Full: shape: int[] * dtype: Dtype * value: float -> RawTensor
    /// A tensor holding a copy of a flat row-major float32[], float[] or int[].
    abstract OfArray: data: Array * shape: int[] -> RawTensor
    /// 0, 1, ..., n-1.
    abstract Arange: n: int * dtype: Dtype -> RawTensor
    /// Draws from the counter-based generator: element i uses counters offset + 2i and offset + 2i + 1.
    abstract Random: kind: RandomKind * shape: int[] * dtype: Dtype * seed: uint64 * offset: uint64 -> RawTensor
    /// Concatenation along `dim` of tensors that agree elsewhere.
    abstract Cat: tensors: RawTensor[] * dim: int -> RawTensor
