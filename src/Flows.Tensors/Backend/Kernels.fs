namespace Flows.Tensors.Backend

open System.Collections.Concurrent
open Flows.Tensors

/// Fused kernels that a library built on Flows.Tensors supplies per backend (DiffSharp's extension
/// pattern): this library stores and finds them and knows nothing of what they compute. An
/// implementation is any value, typically a function of raw tensors; `find` checks its type.
[<RequireQualifiedAccess>]
module Kernels =

    let private table = ConcurrentDictionary<struct (string * string), obj>()

    /// The backend family kernels are registered for: "cpu" or "cuda".
    let backendOf (device: Device) =
        match device with
        | Device.Cpu -> "cpu"
        | Device.Cuda _ -> "cuda"

    /// Registers kernel `name`'s implementation for `backend` ("cpu" or "cuda"), replacing an earlier one.
    let register<'F> (name: string) (backend: string) (implementation: 'F) =
        if backend <> "cpu" && backend <> "cuda" then invalidArg (nameof backend) $"expected the backend cpu or cuda, got '{backend}'"
        table[struct (name, backend)] <- box implementation

    /// Kernel `name`'s implementation for the backend of `device`, or an error naming both.
    let find<'F> (name: string) (device: Device) : 'F =
        let backend = backendOf device
        match table.TryGetValue(struct (name, backend)) with
        | true, (:? 'F as f) -> f
        | true, other -> invalidOp $"kernel {name} for {backend} is registered as {other.GetType()}, not {typeof<'F>}"
        | _ ->
            let others = [ for struct (n, b) in table.Keys do if n = name then b ] |> List.sort
            let known = if others.IsEmpty then "it is registered for no backend" else "it is registered for " + String.concat ", " others
            invalidOp $"no implementation of kernel {name} is registered for the {backend} backend ({device}): {known}"
