namespace Flows

/// One hyperparameter value that rebuilds a bijector (saved in model manifests).
[<RequireQualifiedAccess>]
type Setting =
    | Int of int
    | Float of float
    | Text of string
    | Ints of int[]
    | Floats of float[]

    /// The value as a user wrote it (messages never show the union's case names).
    override s.ToString() =
        let list (values: string seq) = "[" + String.concat ", " values + "]"
        let number (v: float) = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
        match s with
        | Int v -> $"the integer {v}"
        | Float v -> $"the number {number v}"
        | Text v -> $"the text \"{v}\""
        | Ints vs -> $"the integers {vs |> Seq.map string |> list}"
        | Floats vs -> $"the numbers {vs |> Seq.map number |> list}"

/// The hyperparameters of a bijector, by name.
type Settings = Map<string, Setting>

/// Reading settings back, with errors that name the missing or mistyped key.
[<RequireQualifiedAccess>]
module Settings =

    /// Settings from pairs.
    let ofList (pairs: (string * Setting) list) : Settings = Map.ofList pairs

    // the value at `key` through `pick`, or an error saying what was missing or expected
    let private read (key: string) (expected: string) (pick: Setting -> 'a option) (settings: Settings) =
        match Map.tryFind key settings with
        | None -> invalidArg (nameof settings) $"setting '{key}' is missing"
        | Some v ->
            match pick v with
            | Some value -> value
            | None -> invalidArg (nameof settings) $"setting '{key}' should be {expected}, got {v}"

    /// An integer setting.
    let int (key: string) (settings: Settings) =
        read key "an integer" (function Setting.Int v -> Some v | _ -> None) settings

    /// A float setting (an integer is accepted).
    let float (key: string) (settings: Settings) =
        read key "a number" (function Setting.Float v -> Some v | Setting.Int v -> Some(double v) | _ -> None) settings

    /// A text setting.
    let text (key: string) (settings: Settings) =
        read key "text" (function Setting.Text v -> Some v | _ -> None) settings

    /// An integer-array setting.
    let ints (key: string) (settings: Settings) =
        read key "integers" (function Setting.Ints v -> Some v | _ -> None) settings

    /// `inner` with every key under `prefix` ("inner." → "inner.dim"), for settings that hold a
    /// nested bijector's settings.
    let nest (prefix: string) (inner: Settings) : Settings =
        inner |> Seq.map (fun kv -> prefix + kv.Key, kv.Value) |> Map.ofSeq

    /// The settings under `prefix`, with the prefix taken off (undoes `nest`).
    let within (prefix: string) (settings: Settings) : Settings =
        settings
        |> Seq.filter (fun kv -> kv.Key.StartsWith(prefix, System.StringComparison.Ordinal))
        |> Seq.map (fun kv -> kv.Key.Substring prefix.Length, kv.Value)
        |> Map.ofSeq
