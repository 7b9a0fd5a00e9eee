/// Model files: a directory holding `model.json` (format version, dtype, the base distribution and
/// every layer as catalogue name + settings, context width, data standardisation, SHA-256 of the
/// weights) and `weights.safetensors` (every parameter and buffer under "base.*" and "layers.i.*").
/// Loading rebuilds each layer through its catalogue entry and puts the saved tensors back, so any
/// registered bijector round-trips without code of its own.
module Flows.Io.ModelFile

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json
open Flows
open Flows.Data
open Flows.Distributions
open Flows.Tensors

/// The manifest format version this library writes and reads.
let formatVersion = 1

/// The manifest's file name inside a model directory.
let manifestName = "model.json"

/// The weights' file name inside a model directory.
let weightsName = "weights.safetensors"

// ---- settings as JSON: each value tagged with its case, {"int": 3}, {"floats": [0.5, 1]} ----

let private writeFloat (json: Utf8JsonWriter) (v: float) =
    // JSON has no NaN or infinities; they travel as strings and parse back exactly.
    if Double.IsFinite v then json.WriteNumberValue v else json.WriteStringValue(v.ToString "R")

let private readFloat (e: JsonElement) =
    if e.ValueKind = JsonValueKind.String then Double.Parse(e.GetString(), Globalization.CultureInfo.InvariantCulture) else e.GetDouble()

let private writeSettings (json: Utf8JsonWriter) (settings: Settings) =
    json.WriteStartObject "settings"
    for KeyValue(key, value) in settings do
        json.WriteStartObject key
        match value with
        | Setting.Int v -> json.WriteNumber("int", v)
        | Setting.Float v ->
            json.WritePropertyName "float"
            writeFloat json v
        | Setting.Text v -> json.WriteString("text", v)
        | Setting.Ints vs ->
            json.WriteStartArray "ints"
            for v in vs do json.WriteNumberValue v
            json.WriteEndArray()
        | Setting.Floats vs ->
            json.WriteStartArray "floats"
            for v in vs do writeFloat json v
            json.WriteEndArray()
        json.WriteEndObject()
    json.WriteEndObject()

let private readSetting (e: JsonElement) =
    let tagged = e.EnumerateObject() |> Seq.exactlyOne
    match tagged.Name with
    | "int" -> Setting.Int(tagged.Value.GetInt32())
    | "float" -> Setting.Float(readFloat tagged.Value)
    | "text" -> Setting.Text(tagged.Value.GetString())
    | "ints" -> Setting.Ints [| for v in tagged.Value.EnumerateArray() -> v.GetInt32() |]
    | "floats" -> Setting.Floats [| for v in tagged.Value.EnumerateArray() -> readFloat v |]
    | other -> invalidArg "settings" $"unknown setting type '{other}'"

let private readSettings (e: JsonElement) : Settings =
    e.EnumerateObject() |> Seq.map (fun p -> p.Name, readSetting p.Value) |> Map.ofSeq

// ---- base distributions by name ----

let private rebuildBase (name: string) (dtype: Dtype) (s: Settings) =
    match name with
    | "standard-normal" -> Distribution.standardNormal (Settings.ints "event" s) dtype
    | "diagonal-normal" -> Distribution.diagonalNormal (Settings.ints "event" s) dtype
    | "uniform-box" -> Distribution.uniformBox (Settings.ints "event" s) (Settings.float "low" s) (Settings.float "high" s) dtype
    // the locations are saved weights; any start point of the right shape will do
    | "gaussian-mixture" -> Distribution.gaussianMixture (Tensor.zeros([| Settings.int "components" s; Settings.int "dim" s |], dtype)) 1.0
    | other -> invalidArg "base" $"unknown base distribution '{other}'; have: standard-normal, diagonal-normal, uniform-box, gaussian-mixture"

/// A layer rebuilt from its name and settings through the catalogue entry of that name, inverted
/// when the settings say so and Build did not (a generic `Bijector.invert` of any entry).
let rebuildLayer (dtype: Dtype) (name: string) (settings: Settings) = Catalogue.rebuild dtype name settings

// ---- saving ----

let private weightsOf (model: Model) =
    [ for n, t in Array.zip model.Flow.Base.Params.Names model.Flow.Base.Params.Values -> $"base.{n}", t
      for i, b in List.indexed model.Flow.Layers do
          for n, t in Array.zip b.Params.Names b.Params.Values -> $"layers.{i}.{n}", t
          for n, t in Array.zip b.Buffers.Names b.Buffers.Values -> $"layers.{i}.{n}", t ]

let private writeStandardisation (json: Utf8JsonWriter) (key: string) (standardisation: Standardisation option) =
    match standardisation with
    | Some s ->
        json.WriteStartObject key
        json.WriteStartArray "mean"
        for v in s.Mean do writeFloat json v
        json.WriteEndArray()
        json.WriteStartArray "scale"
        for v in s.Scale do writeFloat json v
        json.WriteEndArray()
        json.WriteEndObject()
    | None -> json.WriteNull key

let private manifestBytes (model: Model) (checksum: string) =
    use stream = new MemoryStream()
    (
        use json = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        json.WriteStartObject()
        json.WriteString("format", "flows-model")
        json.WriteNumber("version", formatVersion)
        json.WriteString("dtype", string model.Flow.Base.Dtype)
        json.WriteNumber("contextDim", model.ContextDim)
        json.WriteStartObject "base"
        json.WriteString("name", model.Flow.Base.Name)
        writeSettings json model.Flow.Base.Settings
        json.WriteEndObject()
        json.WriteStartArray "layers"
        for b in model.Flow.Layers do
            json.WriteStartObject()
            json.WriteString("name", b.Name)
            writeSettings json b.Settings
            json.WriteEndObject()
        json.WriteEndArray()
        writeStandardisation json "standardisation" model.Standardisation
        writeStandardisation json "contextStandardisation" model.ContextStandardisation
        json.WriteStartObject "fitting"
        match model.Fitting with
        | Fitting.MaximumLikelihood -> json.WriteString("name", "maximum-likelihood")
        | Fitting.FlowMatching sigmaMin ->
            json.WriteString("name", "flow-matching")
            json.WritePropertyName "sigmaMin"
            writeFloat json sigmaMin
        json.WriteEndObject()
        json.WriteStartObject "weights"
        json.WriteString("file", weightsName)
        json.WriteString("sha256", checksum)
        json.WriteEndObject()
        json.WriteEndObject()
    )
    stream.ToArray()

let private sha256 (bytes: byte[]) = Convert.ToHexStringLower(SHA256.HashData bytes)

/// Writes `model` as the directory `directory`: both files go to a fresh sibling directory that is
/// then renamed into place, so a crash never leaves a half-written model. An existing model
/// directory is replaced; a directory holding anything else is refused.
let save (directory: string) (model: Model) =
    Guard.that (nameof directory) (not (String.IsNullOrWhiteSpace directory)) "the model directory must be named"
    model.Flow.Layers |> List.iteri (fun i b ->
        if (Catalogue.tryFind b.Name).IsNone then
            invalidArg (nameof model) $"layer {i} ('{b.Name}') has no catalogue entry, so it cannot be rebuilt from a file")
    let weights = weightsOf model
    match weights |> List.countBy fst |> List.tryFind (fun (_, n) -> n > 1) with
    | Some(name, _) -> invalidArg (nameof model) $"the weight name '{name}' appears twice"
    | None -> ()
    let target = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar))
    if Directory.Exists target then
        let foreign = Directory.EnumerateFileSystemEntries target |> Seq.map Path.GetFileName |> Seq.filter (fun n -> n <> manifestName && n <> weightsName) |> List.ofSeq
        let listed = String.Join(", ", foreign)
        Guard.that (nameof directory) foreign.IsEmpty $"'{target}' holds other files ({listed}); refusing to replace it with a model"
    let weightBytes = SafeTensors.toBytes (Map.ofList [ "format", "flows-model"; "version", string formatVersion ]) weights
    let staging = $"{target}.tmp-{Guid.NewGuid():N}"
    Directory.CreateDirectory staging |> ignore
    try
        File.WriteAllBytes(Path.Combine(staging, weightsName), weightBytes)
        File.WriteAllBytes(Path.Combine(staging, manifestName), manifestBytes model (sha256 weightBytes))
        if Directory.Exists target then
            let old = $"{target}.old-{Guid.NewGuid():N}"
            Directory.Move(target, old)
            Directory.Move(staging, target)
            Directory.Delete(old, true)
        else Directory.Move(staging, target)
    finally
        if Directory.Exists staging then Directory.Delete(staging, true)

// ---- loading ----

let private corrupt (file: string) (what: string) = raise (InvalidDataException $"{file}: {what}")

// Puts the saved tensors named `prefix.*` into `expected` (the rebuilt one's names and shapes).
let private restore (file: string) (saved: Collections.Generic.Dictionary<string, Tensor>) (used: Collections.Generic.HashSet<string>) (owner: string) (prefix: string) (expected: Params) =
    expected.WithValues(
        Array.zip expected.Names expected.Values
        |> Array.map (fun (n, fresh) ->
            let key = $"{prefix}.{n}"
            match saved.TryGetValue key with
            | false, _ -> corrupt file $"missing tensor '{key}' of {owner}"
            | true, t ->
                if t.shape <> fresh.shape then corrupt file $"tensor '{key}' of {owner} has shape {Shape.show t.shape}; expected {Shape.show fresh.shape}"
                if t.dtype <> fresh.dtype then corrupt file $"tensor '{key}' of {owner} has dtype {t.dtype}; expected {fresh.dtype}"
                used.Add key |> ignore
                t))

let private property (file: string) (e: JsonElement) (key: string) =
    match e.TryGetProperty key with
    | true, v -> v
    | _ -> corrupt file $"expected a \"{key}\" field"

/// Reads the model directory `directory`. A missing file, malformed JSON, another format version,
/// unknown names, a weights file that fails its checksum, is truncated, or lacks or has extra
/// tensors, or tensors of the wrong shape or dtype, raise errors naming the file and what was expected.
let load (directory: string) : Model =
    let manifestPath = Path.Combine(directory, manifestName)
    let weightsPath = Path.Combine(directory, weightsName)
    if not (Directory.Exists directory) then raise (DirectoryNotFoundException $"no model directory '{directory}'")
    if not (File.Exists manifestPath) then raise (FileNotFoundException($"'{directory}' is not a model: it has no {manifestName}", manifestPath))
    if not (File.Exists weightsPath) then raise (FileNotFoundException($"'{directory}' is not a complete model: it has no {weightsName}", weightsPath))
    let document =
        try JsonDocument.Parse(File.ReadAllBytes manifestPath)
        with :? JsonException as e -> corrupt manifestPath $"not valid JSON ({e.Message})"
    use document = document
    let root = document.RootElement
    let field = property manifestPath
    try
        if root.ValueKind <> JsonValueKind.Object || (field root "format").GetString() <> "flows-model" then
            corrupt manifestPath "not a flows model manifest (expected \"format\": \"flows-model\")"
        let version = (field root "version").GetInt32()
        if version <> formatVersion then
            corrupt manifestPath $"format version {version} is not supported; this library reads version {formatVersion}"
        let weightBytes = File.ReadAllBytes weightsPath
        let contents = SafeTensors.ofBytes weightsPath weightBytes
        let expectedSum = (field (field root "weights") "sha256").GetString()
        let actualSum = sha256 weightBytes
        if not (String.Equals(expectedSum, actualSum, StringComparison.OrdinalIgnoreCase)) then
            corrupt weightsPath $"SHA-256 is {actualSum} but {manifestName} expects {expectedSum}: the file is corrupt or was changed"
        let dtype =
            match (field root "dtype").GetString() with
            | "float32" -> Dtype.Float32
            | "float64" -> Dtype.Float64
            | other -> corrupt manifestPath $"dtype '{other}'; expected float32 or float64"
        let saved = Collections.Generic.Dictionary<string, Tensor>(dict contents.Tensors)
        let used = Collections.Generic.HashSet<string>()
        let baseJson = field root "base"
        let baseName = (field baseJson "name").GetString()
        let baseDistribution =
            try rebuildBase baseName dtype (readSettings (field baseJson "settings"))
            with :? ArgumentException as e -> corrupt manifestPath $"the base distribution cannot be rebuilt: {e.Message}"
        let baseDistribution = { baseDistribution with Params = restore weightsPath saved used $"the base ({baseName})" "base" baseDistribution.Params }
        let layers =
            [ for i, layer in Seq.indexed ((field root "layers").EnumerateArray()) ->
                let name = (field layer "name").GetString()
                let b =
                    try rebuildLayer dtype name (readSettings (field layer "settings"))
                    with :? ArgumentException as e -> corrupt manifestPath $"layer {i} ('{name}') cannot be rebuilt: {e.Message}"
                let owner = $"layer {i} ({name})"
                { b with
                    Params = restore weightsPath saved used owner $"layers.{i}" b.Params
                    Buffers = restore weightsPath saved used owner $"layers.{i}" b.Buffers } ]
        match saved.Keys |> Seq.tryFind (fun k -> not (used.Contains k)) with
        | Some extra -> corrupt weightsPath $"unexpected tensor '{extra}': the manifest's layers do not use it"
        | None -> ()
        let readStandardisation (s: JsonElement) =
            match s.ValueKind with
            | JsonValueKind.Null -> None
            | _ ->
                let values key = [| for v in (field s key).EnumerateArray() -> readFloat v |]
                Some { Mean = values "mean"; Scale = values "scale" }
        let standardisation = readStandardisation (field root "standardisation")
        // files written before contexts were standardised have no "contextStandardisation"
        let contextStandardisation =
            match root.TryGetProperty "contextStandardisation" with
            | true, s -> readStandardisation s
            | false, _ -> None
        // files written before fitting was saved have no "fitting": they were fitted by maximum likelihood
        let fitting =
            match root.TryGetProperty "fitting" with
            | false, _ -> Fitting.MaximumLikelihood
            | true, f ->
                match (field f "name").GetString() with
                | "maximum-likelihood" -> Fitting.MaximumLikelihood
                | "flow-matching" -> Fitting.FlowMatching(readFloat (field f "sigmaMin"))
                | other -> corrupt manifestPath $"unknown fitting '{other}'; expected maximum-likelihood or flow-matching"
        { Flow = Flow.create baseDistribution layers
          ContextDim = (field root "contextDim").GetInt32()
          Standardisation = standardisation
          ContextStandardisation = contextStandardisation
          Fitting = fitting }
    // JsonElement getters throw these for a field of the wrong kind (text for a number, ...)
    with e when (e :? InvalidOperationException || e :? FormatException || e :? ArgumentException) ->
        corrupt manifestPath $"unexpected content ({e.Message})"
