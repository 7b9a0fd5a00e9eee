namespace Flows.Tensors

/// Element type of a tensor. Float32 is the default; Int32 holds indices (gather, searchsorted, argmax).
[<RequireQualifiedAccess>]
type Dtype =
    | Float32
    | Float64
    | Int32

    /// Bytes per element.
    member d.Size =
        match d with
        | Float32 | Int32 -> 4
        | Float64 -> 8

    /// True for the floating-point types, the only ones that carry gradients.
    member d.IsFloat =
        match d with
        | Float32 | Float64 -> true
        | Int32 -> false

    override d.ToString() =
        match d with
        | Float32 -> "float32"
        | Float64 -> "float64"
        | Int32 -> "int32"

/// Where a tensor's storage lives. Tensors move between devices only by an explicit `moveTo`.
[<RequireQualifiedAccess; Struct>]
type Device =
    | Cpu
    | Cuda of index: int

    override d.ToString() =
        match d with
        | Cpu -> "cpu"
        | Cuda i -> $"cuda:{i}"
