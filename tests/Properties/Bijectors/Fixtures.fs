namespace Flows.Properties.Bijectors

open System
open Flows.Fixtures

/// What the law suite runs on: the library's catalogue entries and the test-only variants.
[<RequireQualifiedAccess>]
module Fixtures =

    /// Every entry and variant, sorted by name.
    let all : Fixture list = Library.all @ Variants.all |> List.sortBy (fun e -> e.Name)

    /// The entry or variant called `name`.
    let find (name: string) =
        match all |> List.tryFind (fun e -> e.Name = name) with
        | Some e -> e
        | None -> invalidArg (nameof name) $"""no entry or variant '{name}'; have: {String.Join(", ", all |> List.map (fun e -> e.Name))}"""
