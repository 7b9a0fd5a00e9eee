namespace Flows

open System.Collections.Concurrent
open System.Collections.Generic
open Flows.Tensors

/// The names of a parameter set and their positions, shared by every set with those names (a
/// training step's new values keep their layout). It remembers the layout of each scope asked of it:
/// layers scope their parameters on every call, and rebuilding the names and lookup each time was
/// garbage of every step.
[<Sealed>]
type internal ParamsLayout(names: string[]) =
    let index = Dictionary<string, int>()
    do
        names |> Array.iteri (fun i n ->
            if not (index.TryAdd(n, i)) then invalidArg "names" $"parameter name '{n}' appears twice")
    // made on the first Scope: most layouts (a step's scoped sets, empty buffers) are never scoped
    let scopes = lazy ConcurrentDictionary<string, struct (int[] * ParamsLayout)>()

    member _.Names = names
    member _.Index: IReadOnlyDictionary<string, int> = index

    /// The positions of the names under `prefix.` and the layout of those names without it.
    member _.Scope(prefix: string) =
        match scopes.Value.TryGetValue prefix with
        | true, known -> known
        | _ ->
            let p = prefix + "."
            let picked = [| for i in 0 .. names.Length - 1 do if names[i].StartsWith p then i |]
            scopes.Value.GetOrAdd(prefix, struct (picked, ParamsLayout(picked |> Array.map (fun i -> names[i].Substring p.Length))))

/// An immutable ordered collection of named tensors (learnable parameters or buffers), keyed by
/// dotted paths such as "layers.3.net.0.weight" so errors and model files can say which one.
[<Sealed>]
type Params private (layout: ParamsLayout, values: Tensor[]) =
    let names = layout.Names
    let index = layout.Index

    static let build (names: string[]) (values: Tensor[]) = Params(ParamsLayout names, values)
    static let none = build [||] [||]

    /// No parameters.
    static member empty = none
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
        Params(layout, newValues)
    /// Replaces the tensors named in `updates`, keeping the rest.
    member p.With(updates: (string * Tensor) list) =
        let v = Array.copy values
        for name, t in updates do
            match index.TryGetValue name with
            | true, i -> v[i] <- t
            | _ -> invalidArg (nameof updates) $"no parameter '{name}' to replace"
        Params(layout, v)
    /// Every name prefixed with `prefix` and a dot.
    member _.Prefixed(prefix: string) = build (names |> Array.map (fun n -> $"{prefix}.{n}")) values
    /// The tensors whose names start with `prefix.`, with the prefix removed.
    member _.Scope(prefix: string) =
        let struct (picked, scoped) = layout.Scope prefix
        Params(scoped, picked |> Array.map (fun i -> values[i]))
    /// Applies `f` to every tensor.
    member _.Map(f: Tensor -> Tensor) = Params(layout, Array.map f values)
