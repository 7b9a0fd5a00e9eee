namespace Flows

open System.Collections.Generic
open Flows.Tensors

/// An immutable ordered collection of named tensors (learnable parameters or buffers), keyed by
/// dotted paths such as "layers.3.net.0.weight" so errors and model files can say which one.
[<Sealed>]
type Params private (names: string[], values: Tensor[], index: IReadOnlyDictionary<string, int>) =

    static let build (names: string[]) (values: Tensor[]) =
        let index = Dictionary<string, int>()
        names |> Array.iteri (fun i n ->
            if not (index.TryAdd(n, i)) then invalidArg "names" $"parameter name '{n}' appears twice")
        Params(names, values, index)

    /// No parameters.
    static member empty = build [||] [||]
    /// Parameters from (name, tensor) pairs, in order.
    static member ofList(entries: (string * Tensor) list) =
        build (entries |> List.map fst |> Array.ofList) (entries |> List.map snd |> Array.ofList)
    /// Concatenation of several parameter sets whose names do not clash.
    static member concat(sets: Params seq) =
        let sets = Array.ofSeq sets
        build (sets |> Array.collect _.Names) (sets |> Array.collect _.Values)

    /// Names in order.
    member _.Names = names
    /// Tensors in the order of `Names`.
    member _.Values = values
    /// Number of tensors.
    member _.Count = names.Length
    /// Total number of scalar parameters.
    member _.NumElements = values |> Array.sumBy _.numel
    /// The tensor called `name`, or an error listing the names there are.
    member _.Item
        with get (name: string) =
            match index.TryGetValue name with
            | true, i -> values[i]
            | _ -> invalidArg (nameof name) $"""no parameter '{name}'; have: {System.String.Join(", ", names)}"""
    /// True when a tensor called `name` is present.
    member _.Contains(name: string) = index.ContainsKey name
    /// The same names with new tensors (same count and order).
    member _.WithValues(newValues: Tensor[]) =
        if newValues.Length <> values.Length then
            invalidArg (nameof newValues) $"expected {values.Length} tensors, got {newValues.Length}"
        Params(names, newValues, index)
    /// Replaces the tensors named in `updates`, keeping the rest.
    member p.With(updates: (string * Tensor) list) =
        let v = Array.copy values
        for name, t in updates do
            match index.TryGetValue name with
            | true, i -> v[i] <- t
            | _ -> invalidArg (nameof updates) $"no parameter '{name}' to replace"
        Params(names, v, index)
    /// Every name prefixed with `prefix` and a dot.
    member _.Prefixed(prefix: string) = build (names |> Array.map (fun n -> $"{prefix}.{n}")) values
    /// The tensors whose names start with `prefix.`, with the prefix removed.
    member _.Scope(prefix: string) =
        let p = prefix + "."
        let picked = Array.indexed names |> Array.filter (fun (_, n) -> n.StartsWith p)
        build (picked |> Array.map (fun (_, n) -> n.Substring p.Length)) (picked |> Array.map (fun (i, _) -> values[i]))
    /// Applies `f` to every tensor.
    member _.Map(f: Tensor -> Tensor) = Params(names, Array.map f values, index)
