namespace Flows

/// One hyperparameter value that rebuilds a bijector (saved in model manifests).
[<RequireQualifiedAccess>]
type Setting =
    | Int of int
    | Float of float
    | Text of string
    | Ints of int[]
    | Floats of float[]

/// The hyperparameters of a bijector, by name.
type Settings = Map<string, Setting>

/// Reading settings back, with errors that name the missing or mistyped key.
[<RequireQualifiedAccess>]
module Settings =

    /// Settings from pairs.
    let ofList (pairs: (string * Setting) list) : Settings = Map.ofList pairs

    let private get (key: string) (settings: Settings) =
        match Map.tryFind key settings with
        | Some v -> v
        | None -> invalidArg (nameof settings) $"setting '{key}' is missing"

    /// An integer setting.
    let int (key: string) (settings: Settings) =
        match get key settings with
        | Setting.Int v -> v
        | other -> invalidArg (nameof settings) $"setting '{key}' should be an integer, got {other}"

    /// A float setting.
    let float (key: string) (settings: Settings) =
        match get key settings with
        | Setting.Float v -> v
        | Setting.Int v -> double v
        | other -> invalidArg (nameof settings) $"setting '{key}' should be a number, got {other}"

    /// A text setting.
    let text (key: string) (settings: Settings) =
        match get key settings with
        | Setting.Text v -> v
        | other -> invalidArg (nameof settings) $"setting '{key}' should be text, got {other}"

    /// An integer-array setting.
    let ints (key: string) (settings: Settings) =
        match get key settings with
        | Setting.Ints v -> v
        | other -> invalidArg (nameof settings) $"setting '{key}' should be integers, got {other}"
