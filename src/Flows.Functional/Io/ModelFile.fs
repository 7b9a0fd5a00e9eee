/// Model files: a directory holding `model.json` (format version, dtype, the base distribution and
/// every layer as catalogue name + settings, context width, data standardisation, SHA-256 of the
/// weights, and from version 2 a seal: the SHA-256 of the manifest itself) and `weights.safetensors`
/// (every parameter and buffer under "base.*" and "layers.i.*"). Loading checks both hashes and
/// every field, then rebuilds each layer through its catalogue entry under an allocation budget
/// bounded by the weights file, and puts the saved tensors back.
module Flows.Io.ModelFile

open System
open System.IO
open System.Text.Json
open Flows
open Flows.Data
open Flows.Distributions
open Flows.Tensors
open Flows.Io.Manifest

/// The manifest format version this library writes (it reads this one and version 1, which has no seal).
let formatVersion = 2

/// The manifest's file name inside a model directory.
let manifestName = "model.json"

/// The weights' file name inside a model directory.
let weightsName = "weights.safetensors"

/// A layer rebuilt from its name and settings through the catalogue entry of that name, inverted
/// when the settings say so and Build did not (a generic `Bijector.invert` of any entry).
let rebuildLayer (dtype: Dtype) (name: string) (settings: Settings) = Catalogue.rebuild dtype name settings

// ---- saving ----

let private weightsOf (model: Model) =
    [ for n, t in Array.zip model.Flow.Base.Params.Names model.Flow.Base.Params.Values -> $"base.{n}", t
      for i, b in List.indexed model.Flow.Layers do
          for n, t in Array.zip b.Params.Names b.Params.Values -> $"layers.{i}.{n}", t
          for n, t in Array.zip b.Buffers.Names b.Buffers.Values -> $"layers.{i}.{n}", t ]

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
        | Fitting.Rnode(kinetic, jacobian, steer) ->
            json.WriteString("name", "rnode")
            json.WritePropertyName "kinetic"
            writeFloat json kinetic
            json.WritePropertyName "jacobian"
            writeFloat json jacobian
            steer |> Option.iter (fun halfWidth -> json.WritePropertyName "steer"; writeFloat json halfWidth)
        | Fitting.OtFlow(transport, hjb) ->
            json.WriteString("name", "ot-flow")
            json.WritePropertyName "transport"
            writeFloat json transport
            json.WritePropertyName "hjb"
            writeFloat json hjb
        json.WriteEndObject()
        // written only when known, so that a model without names keeps the manifest older readers know
        if not model.ColumnNames.IsEmpty then
            json.WriteStartArray "columns"
            for name in model.ColumnNames do json.WriteStringValue name
            json.WriteEndArray()
        json.WriteStartObject "weights"
        json.WriteString("file", weightsName)
        json.WriteString("sha256", checksum)
        json.WriteEndObject()
        writeSealPlaceholder json
        json.WriteEndObject()
    )
    seal (stream.ToArray())

/// The folder a save to `directory` writes: the path itself, or the folder a symlink there
/// resolves to (the link is kept, and the folder it names is replaced atomically).
let private resolveTarget (directory: string) =
    let full = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar))
    let info = DirectoryInfo full
    if isNull info.LinkTarget then full
    else
        match info.ResolveLinkTarget true with
        | null -> full
        | final -> Path.GetFullPath final.FullName

/// Writes `model` as the directory `directory`: both files are written and flushed to disk in a
/// fresh sibling folder, which then takes the directory's place in one atomic step (Linux:
/// renameat2 RENAME_EXCHANGE), so a crash at any moment leaves the old model or the new one.
/// Saves racing on one directory end with one of their models, complete. An existing model
/// directory is replaced; a directory holding anything else is refused. Through a symlink, the
/// folder the link names is replaced and the link kept.
let save (directory: string) (model: Model) =
    Guard.that (nameof directory) (not (String.IsNullOrWhiteSpace directory)) "the model directory must be named"
    model.Flow.Layers |> List.iteri (fun i b ->
        if (Catalogue.tryFind b.Name).IsNone then
            invalidArg (nameof model) $"layer {i} ('{b.Name}') has no catalogue entry, so it cannot be rebuilt from a file")
    let weights = weightsOf model
    match weights |> List.countBy fst |> List.tryFind (fun (_, n) -> n > 1) with
    | Some(name, _) -> invalidArg (nameof model) $"the weight name '{name}' appears twice"
    | None -> ()
    let target = resolveTarget directory
    Guard.that (nameof directory) (not (File.Exists target)) $"'{target}' is a file; a model is saved as a directory"
    if Directory.Exists target then
        let foreign = Directory.EnumerateFileSystemEntries target |> Seq.map Path.GetFileName |> Seq.filter (fun n -> n <> manifestName && n <> weightsName) |> List.ofSeq
        let listed = String.Join(", ", foreign)
        Guard.that (nameof directory) foreign.IsEmpty $"'{target}' holds other files ({listed}); refusing to replace it with a model"
    let weightBytes = SafeTensors.toBytes (Map.ofList [ "format", "flows-model"; "version", string formatVersion ]) weights
    let manifest = manifestBytes model (sha256 (ReadOnlySpan weightBytes))
    // a unique sibling on the same file system, so that the swap is a rename; a killed save leaves
    // it behind, for a later save to remove once its process is gone
    let staging = AtomicFolder.stagingFor target
    Directory.CreateDirectory staging |> ignore
    let mutable previous = None
    try
        AtomicFolder.writeDurably (Path.Combine(staging, weightsName)) weightBytes
        AtomicFolder.writeDurably (Path.Combine(staging, manifestName)) manifest
        AtomicFolder.syncFolder staging
        previous <- AtomicFolder.replace staging target
    finally
        match previous with
        | Some old when Directory.Exists old -> Directory.Delete(old, true)
        | _ -> if Directory.Exists staging then Directory.Delete(staging, true)
    AtomicFolder.removeStale target

// ---- loading ----

let private property (file: string) (e: JsonElement) (key: string) =
    match e.TryGetProperty key with
    | true, v -> v
    | _ -> corrupt file $"expected a \"{key}\" field"

// a manifest is a few kilobytes per layer; more than this is not one of ours
let private manifestLimit = 16L * 1024L * 1024L

// a manifest nests six deep (root, layers, layer, settings, setting, array)
let private manifestOptions = JsonDocumentOptions(MaxDepth = 12)

// integer settings sized like no tensor of the weights file are refused before a layer is built
let private settingSlack = 65536L

// bytes a rebuild may allocate beyond a few times the weights file (masks, initial draws, temporaries)
let private budgetSlack = 64L * 1024L * 1024L

// the optional "columns" field: one name per data column (files written before it have none)
let private readColumnNames (file: string) (columns: int) (root: JsonElement) =
    match root.TryGetProperty "columns" with
    | false, _ -> []
    | true, names when names.ValueKind = JsonValueKind.Array ->
        let listed = [ for n in names.EnumerateArray() -> if n.ValueKind = JsonValueKind.String then n.GetString() else corrupt file "\"columns\" holds a value that is not a name" ]
        if listed.Length <> columns then corrupt file $"\"columns\" names {listed.Length} columns; the model has {columns}"
        listed
    | true, _ -> corrupt file "\"columns\" must be an array of names"

// the model of one version of a folder's two files
let private fromBytes (directory: string) (manifestBytes: byte[]) (weightBytes: byte[]) : Model =
    let manifestPath = Path.Combine(directory, manifestName)
    let weightsPath = Path.Combine(directory, weightsName)
    let document =
        try JsonDocument.Parse(ReadOnlyMemory manifestBytes, manifestOptions)
        with :? JsonException as e -> corrupt manifestPath $"not valid JSON ({e.Message})"
    use document = document
    let root = document.RootElement
    let field = property manifestPath
    try
        if root.ValueKind <> JsonValueKind.Object || (field root "format").ValueKind <> JsonValueKind.String || (field root "format").GetString() <> "flows-model" then
            corrupt manifestPath "not a flows model manifest (expected \"format\": \"flows-model\")"
        let version = (field root "version").GetInt32()
        if version <> 1 && version <> formatVersion then
            corrupt manifestPath $"format version {version} is not supported; this library reads versions 1 and {formatVersion}"
        // before any field is believed: version 1 files have no seal and are read as they were
        if version >= 2 then verify manifestPath manifestBytes
        let dtype =
            match (field root "dtype").GetString() with
            | "float32" -> Dtype.Float32
            | "float64" -> Dtype.Float64
            | other -> corrupt manifestPath $"dtype '{other}'; expected float32 or float64"
        let contextDim = (field root "contextDim").GetInt32()
        if contextDim < 0 then corrupt manifestPath $"contextDim is {contextDim}; expected 0 or more"
        let header = SafeTensors.header weightsPath weightBytes
        let expectedSum = (field (field root "weights") "sha256").GetString()
        let actualSum = sha256 (ReadOnlySpan weightBytes)
        if not (String.Equals(expectedSum, actualSum, StringComparison.OrdinalIgnoreCase)) then
            corrupt weightsPath $"SHA-256 is {actualSum} but {manifestName} expects {expectedSum}: the file is corrupt or was changed"
        // no size setting exceeds the weights' element count (a layer of width h has ≥ h weights)
        // but for small counts (iterations, nodes) that own no tensor
        let sizeBound = max settingSlack (int64 weightBytes.Length / 4L)
        let checkSizes (what: string) (settings: Settings) =
            match oversized sizeBound settings with
            | [] -> ()
            | big ->
                let listed = String.Join(", ", big)
                corrupt manifestPath $"{what} has settings ({listed}) larger than any tensor of {weightsName} allows (at most {sizeBound})"
        if int64 contextDim > sizeBound then corrupt manifestPath $"contextDim is {contextDim}; at most {sizeBound} for these weights"
        let baseJson = field root "base"
        let baseName = (field baseJson "name").GetString()
        let baseSettings = readSettings (field baseJson "settings")
        checkSizes $"the base ({baseName})" baseSettings
        let layerSpecs =
            [ for i, layer in Seq.indexed ((field root "layers").EnumerateArray()) ->
                let name = (field layer "name").GetString()
                let settings = readSettings (field layer "settings")
                checkSizes $"layer {i} ('{name}')" settings
                i, name, settings ]
        // a build draws each parameter, scales it and may add a float64 mask of its shape (MADE):
        // a few times the weights' bytes; 16 times leaves room for any catalogue layer
        let budget = 16L * int64 weightBytes.Length + budgetSlack
        // the base is as small as the data's columns; built first, it says how many there are
        let baseDistribution =
            AllocationBudget.Within(budget, fun () ->
                Rebuild.rebuilding manifestPath $"the base distribution ('{baseName}')" (fun () -> Rebuild.baseDistribution baseName dtype baseSettings))
        let columns = baseDistribution.Event |> Array.fold (*) 1
        let standardisation = readStandardisation manifestPath "standardisation" columns (field root "standardisation")
        // files written before contexts were standardised have no "contextStandardisation"
        let contextStandardisation =
            match root.TryGetProperty "contextStandardisation" with
            | true, s -> readStandardisation manifestPath "contextStandardisation" contextDim s
            | false, _ -> None
        let fitting = readFitting manifestPath root
        let columnNames = readColumnNames manifestPath columns root
        let layers =
            AllocationBudget.Within(budget, fun () ->
                [ for i, name, settings in layerSpecs ->
                    Rebuild.rebuilding manifestPath $"layer {i} ('{name}')" (fun () -> i, name, rebuildLayer dtype name settings) ])
        let saved = Collections.Generic.Dictionary<string, Tensor>(dict (SafeTensors.tensors header weightBytes))
        let used = Collections.Generic.HashSet<string>()
        let baseDistribution = { baseDistribution with Params = Rebuild.restore weightsPath saved used $"the base ({baseName})" "base" baseDistribution.Params }
        let layers =
            [ for i, name, b in layers ->
                let owner = $"layer {i} ({name})"
                { b with
                    Params = Rebuild.restore weightsPath saved used owner $"layers.{i}" b.Params
                    Buffers = Rebuild.restore weightsPath saved used owner $"layers.{i}" b.Buffers } ]
        match saved.Keys |> Seq.tryFind (fun k -> not (used.Contains k)) with
        | Some extra -> corrupt weightsPath $"unexpected tensor '{extra}': the manifest's layers do not use it"
        | None -> ()
        { Flow = Flow.create baseDistribution layers
          ContextDim = contextDim
          Standardisation = standardisation
          ContextStandardisation = contextStandardisation
          Fitting = fitting
          ColumnNames = columnNames }
    // JsonElement getters throw these for a field of the wrong kind (text for a number, ...)
    with e when (e :? InvalidOperationException || e :? FormatException || e :? ArgumentException || e :? Collections.Generic.KeyNotFoundException) ->
        corrupt manifestPath $"unexpected content ({e.Message})"

// the two files of one version of the folder (see AtomicFolder.readTogether), or an error naming
// the missing or oversized one; None when a save deleted the version being read (read again)
let private readFolder (directory: string) (finalTry: bool) =
    match AtomicFolder.readTogether directory [ manifestName, manifestLimit; weightsName, int64 Array.MaxLength ] with
    | AtomicFolder.Together.Read [| manifest; weights |] -> Some(manifest, weights)
    | AtomicFolder.Together.Missing _ when not finalTry -> None
    | AtomicFolder.Together.Missing name when name = manifestName || name = "" ->
        raise (FileNotFoundException($"'{directory}' is not a model: it has no {manifestName}", Path.Combine(directory, manifestName)))
    | AtomicFolder.Together.Missing _ ->
        raise (FileNotFoundException($"'{directory}' is not a complete model: it has no {weightsName}", Path.Combine(directory, weightsName)))
    | AtomicFolder.Together.TooLarge(name, length) -> corrupt (Path.Combine(directory, name)) $"{length} bytes is too large for a model file"
    | AtomicFolder.Together.Read _ -> invalidOp "two files were asked for"

let private fromFolder (directory: string) (finalTry: bool) =
    readFolder directory finalTry |> Option.map (fun (manifest, weights) -> fromBytes directory manifest weights)

/// Reads the model directory `directory`. A missing file, malformed JSON, another format version,
/// a manifest or weights file that fails its SHA-256, unknown names, settings that do not fit the
/// weights, a truncated file, missing or extra tensors, or tensors of the wrong shape or dtype raise
/// errors naming the file and what was wrong. Both files are read from one version of the folder,
/// even while other processes save over it. Where the directory is missing because a save was
/// killed mid-way on a system without atomic exchange, the complete previous model is read.
let load (directory: string) : Model =
    let full = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar))
    let complete (d: string) = File.Exists(Path.Combine(d, manifestName)) && File.Exists(Path.Combine(d, weightsName))
    let rec attempt tries =
        let folder = if Directory.Exists full then Some full else AtomicFolder.recover complete full
        match folder with
        | None -> raise (DirectoryNotFoundException $"no model directory '{directory}'")
        | Some folder ->
            match fromFolder folder (tries = 0) with
            | Some model -> model
            | None -> attempt (tries - 1)
    attempt 16
