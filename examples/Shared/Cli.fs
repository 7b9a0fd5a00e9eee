/// Command-line options of the example programs ("--name value" pairs and bare "--flag"s) and the
/// invariant-culture number formatting of their reports. Compiled into each example project.
module Examples.Cli

open System
open System.Globalization

/// A bad command line: the message says what was wrong and how the program is called.
exception UsageError of message: string

/// Parsed options: names (without "--") to values; flags map to "".
type Options = Map<string, string>

/// Parses `argv` against the known option names and flags; anything else is a `UsageError` that lists them.
/// Every example takes `--output` for what it writes, and `--steps`, `--seed`, `--device` where they apply.
let parse (known: string list) (flags: string list) (argv: string[]) : Options =
    let usage () = String.Join(" ", (known |> List.map (fun k -> $"[--{k} value]")) @ (flags |> List.map (fun f -> $"[--{f}]")))
    let rec go (i: int) (acc: Options) =
        if i >= argv.Length then acc
        else
            let name = argv[i].TrimStart '-'
            if not (argv[i].StartsWith "--") then raise (UsageError $"unexpected argument '{argv[i]}'; usage: {usage ()}")
            elif List.contains name flags then go (i + 1) (Map.add name "" acc)
            elif List.contains name known && i + 1 < argv.Length then go (i + 2) (Map.add name argv[i + 1] acc)
            else raise (UsageError $"unknown option or missing value '{argv[i]}'; usage: {usage ()}")
    go 0 Map.empty

// An option read by `read`, or `fallback`; a value `read` refuses is a UsageError naming the option.
let private value (name: string) (what: string) (read: string -> 'a option) (fallback: 'a) (o: Options) =
    match Map.tryFind name o with
    | None -> fallback
    | Some text ->
        match read text with
        | Some v -> v
        | None -> raise (UsageError $"--{name} must be {what}, got '{text}'")

let private parsed (tryParse: string -> bool * 'a) (text: string) =
    match tryParse text with
    | true, v -> Some v
    | _ -> None

/// An integer option, or `fallback`.
let int (name: string) (fallback: int) (o: Options) =
    value name "an integer" (parsed (fun t -> Int32.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture))) fallback o

/// A floating-point option, or `fallback`.
let number (name: string) (fallback: float) (o: Options) =
    value name "a number" (parsed (fun t -> Double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture))) fallback o

/// A seed option, or `fallback`.
let seed (fallback: uint64) (o: Options) =
    value "seed" "a whole number of at least 0" (parsed (fun t -> UInt64.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture))) fallback o

/// The `--device` option ("cpu", "cuda", "cuda:N"), or the CPU.
let device (o: Options) =
    value "device" "cpu, cuda or cuda:N" (fun t -> try Some(Flows.Tensors.Device.Parse t) with :? ArgumentException -> None) Flows.Tensors.Device.Cpu o

/// Runs an example's program: a bad command line prints its message (with the usage) and exits with 2,
/// instead of a stack trace.
let run (program: string[] -> int) (argv: string[]) =
    try program argv
    with UsageError message ->
        eprintfn "%s" message
        2

/// A text option, or `fallback`.
let text (name: string) (fallback: string) (o: Options) = o |> Map.tryFind name |> Option.defaultValue fallback

/// Whether a flag was given.
let flag (name: string) (o: Options) = Map.containsKey name o

/// A number with `digits` decimals, in the invariant culture.
let show (digits: int) (v: float) = v.ToString("F" + string digits, CultureInfo.InvariantCulture)
