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

    /// "cpu", "cuda" (device 0) or "cuda:N", as ToString writes them; anything else is an error naming `text`.
    static member Parse(text: string) : Device =
        let fail () = invalidArg (nameof text) $"expected a device as cpu, cuda or cuda:N (N = 0, 1, ...), got '{text}'"
        match (if isNull text then "" else text.Trim().ToLowerInvariant()) with
        | "cpu" -> Cpu
        | "cuda" -> Cuda 0
        | t when t.StartsWith "cuda:" ->
            match System.Int32.TryParse(t.Substring 5, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture) with
            | true, i -> Cuda i
            | _ -> fail ()
        | _ -> fail ()
