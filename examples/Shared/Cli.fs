/// Command-line options of the example programs ("--name value" pairs and bare "--flag"s) and the
/// invariant-culture number formatting of their reports. Compiled into each example project.
module Examples.Cli

open System
open System.Globalization

/// Parsed options: names (without "--") to values; flags map to "".
type Options = Map<string, string>

/// Parses `argv` against the known option names and flags; anything else is an error that lists them.
let parse (known: string list) (flags: string list) (argv: string[]) : Options =
    let usage () = String.Join(" ", (known |> List.map (fun k -> $"[--{k} value]")) @ (flags |> List.map (fun f -> $"[--{f}]")))
    let rec go (i: int) (acc: Options) =
        if i >= argv.Length then acc
        else
            let name = argv[i].TrimStart '-'
            if not (argv[i].StartsWith "--") then failwith $"unexpected argument '{argv[i]}'; usage: {usage ()}"
            elif List.contains name flags then go (i + 1) (Map.add name "" acc)
            elif List.contains name known && i + 1 < argv.Length then go (i + 2) (Map.add name argv[i + 1] acc)
            else failwith $"unknown option or missing value '{argv[i]}'; usage: {usage ()}"
    go 0 Map.empty

/// An integer option, or `fallback`.
let int (name: string) (fallback: int) (o: Options) =
    o |> Map.tryFind name |> Option.map (fun v -> Int32.Parse(v, CultureInfo.InvariantCulture)) |> Option.defaultValue fallback

/// A floating-point option, or `fallback`.
let number (name: string) (fallback: float) (o: Options) =
    o |> Map.tryFind name |> Option.map (fun v -> Double.Parse(v, CultureInfo.InvariantCulture)) |> Option.defaultValue fallback

/// A seed option, or `fallback`.
let seed (fallback: uint64) (o: Options) =
    o |> Map.tryFind "seed" |> Option.map (fun v -> UInt64.Parse(v, CultureInfo.InvariantCulture)) |> Option.defaultValue fallback

/// A text option, or `fallback`.
let text (name: string) (fallback: string) (o: Options) = o |> Map.tryFind name |> Option.defaultValue fallback

/// Whether a flag was given.
let flag (name: string) (o: Options) = Map.containsKey name o

/// A number with `digits` decimals, in the invariant culture.
let show (digits: int) (v: float) = v.ToString("F" + string digits, CultureInfo.InvariantCulture)
