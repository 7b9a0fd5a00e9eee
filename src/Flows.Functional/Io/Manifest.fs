/// The pieces of `model.json` that are not the model itself: settings and standardisations as
/// JSON, and the seal (a SHA-256 of the manifest's own bytes) that format version 2 ends with.
module internal Flows.Io.Manifest

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json
open Flows
open Flows.Data

/// The raised error for damaged content: the file, then what was wrong.
let corrupt (file: string) (what: string) = raise (InvalidDataException $"{file}: {what}")

/// Hex SHA-256 of bytes.
let sha256 (bytes: ReadOnlySpan<byte>) = Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()

// ---- settings as JSON: each value tagged with its case, {"int": 3}, {"floats": [0.5, 1]} ----

let writeFloat (json: Utf8JsonWriter) (v: float) =
    // JSON has no NaN or infinities; they travel as strings and parse back exactly.
    if Double.IsFinite v then json.WriteNumberValue v else json.WriteStringValue(v.ToString "R")

let readFloat (e: JsonElement) =
    if e.ValueKind = JsonValueKind.String then Double.Parse(e.GetString(), Globalization.CultureInfo.InvariantCulture) else e.GetDouble()

let writeSettings (json: Utf8JsonWriter) (settings: Settings) =
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

let readSettings (e: JsonElement) : Settings =
    e.EnumerateObject() |> Seq.map (fun p -> p.Name, readSetting p.Value) |> Map.ofSeq

/// The integer settings (and integer-array elements) larger in size than `bound`, as "key = value".
let oversized (bound: int64) (settings: Settings) =
    [ for KeyValue(key, value) in settings do
        match value with
        | Setting.Int v when abs (int64 v) > bound -> yield $"{key} = {v}"
        | Setting.Ints vs ->
            match vs |> Array.tryFind (fun v -> abs (int64 v) > bound) with
            | Some v -> yield $"{key} contains {v}"
            | None -> ()
        | _ -> () ]

let writeStandardisation (json: Utf8JsonWriter) (key: string) (standardisation: Standardisation option) =
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

/// A standardisation of `columns` columns read from `s` (null: none); means must be finite and
/// scales finite and positive, or the manifest `file` is reported corrupt naming `key`.
let readStandardisation (file: string) (key: string) (columns: int) (s: JsonElement) =
    match s.ValueKind with
    | JsonValueKind.Null -> None
    | _ ->
        let values name =
            match s.TryGetProperty(name: string) with
            | true, v when v.ValueKind = JsonValueKind.Array ->
                if v.GetArrayLength() <> columns then corrupt file $"\"{key}\".{name} has {v.GetArrayLength()} values; the model has {columns} columns"
                [| for x in v.EnumerateArray() -> readFloat x |]
            | _ -> corrupt file $"\"{key}\" needs a \"{name}\" array"
        let mean, scale = values "mean", values "scale"
        match mean |> Array.tryFindIndex (Double.IsFinite >> not) with
        | Some j -> corrupt file $"\"{key}\".mean[{j}] is {mean[j]}; means must be finite"
        | None -> ()
        match scale |> Array.tryFindIndex (fun v -> not (Double.IsFinite v && v > 0.0)) with
        | Some j -> corrupt file $"\"{key}\".scale[{j}] is {scale[j]}; scales must be finite and positive"
        | None -> ()
        Some { Mean = mean; Scale = scale }

/// How the model was fitted, from the manifest's root; files written before fitting was saved have
/// no "fitting": they were fitted by maximum likelihood.
let readFitting (file: string) (root: JsonElement) =
    match root.TryGetProperty "fitting" with
    | false, _ -> Fitting.MaximumLikelihood
    | true, f ->
        let field (key: string) =
            match f.TryGetProperty key with
            | true, v -> v
            | _ -> corrupt file $"\"fitting\" needs a \"{key}\" field"
        let weight (key: string) =
            let v = readFloat (field key)
            if not (Double.IsFinite v && v >= 0.0) then corrupt file $"fitting.{key} is {v}; expected a finite number ≥ 0"
            v
        match field("name").GetString() with
        | "maximum-likelihood" -> Fitting.MaximumLikelihood
        | "flow-matching" -> Fitting.FlowMatching(weight "sigmaMin")
        | "rnode" ->
            let steer = match f.TryGetProperty "steer" with | true, _ -> Some(weight "steer") | _ -> None
            Fitting.Rnode(weight "kinetic", weight "jacobian", steer)
        | "ot-flow" -> Fitting.OtFlow(weight "transport", weight "hjb")
        | other -> corrupt file $"unknown fitting '{other}'; expected maximum-likelihood, flow-matching, rnode or ot-flow"

// ---- the seal: "manifestSha256" is the SHA-256 of the file with its own 64 hex digits as zeros ----

/// The seal's field name; it is the manifest's last field.
let sealName = "manifestSha256"

let private placeholder = String('0', 64)

/// Writes the seal's field with a placeholder; `seal` fills it in once the bytes are complete.
let writeSealPlaceholder (json: Utf8JsonWriter) = json.WriteString(sealName, placeholder)

// where the 64 hex digits of the seal start: after the one `"manifestSha256"`, a colon and a quote
let private sealDigits (bytes: byte[]) =
    let key = Encoding.ASCII.GetBytes $"\"{sealName}\""
    let span = ReadOnlySpan bytes
    let at = span.IndexOf(ReadOnlySpan key)
    if at < 0 || span.Slice(at + 1).IndexOf(ReadOnlySpan key) >= 0 then None
    else
        let mutable i = at + key.Length
        let skipSpace () =
            while i < bytes.Length && (bytes[i] = ' 'B || bytes[i] = '\n'B || bytes[i] = '\r'B || bytes[i] = '\t'B) do i <- i + 1
        skipSpace ()
        if i < bytes.Length && bytes[i] = ':'B then
            i <- i + 1
            skipSpace ()
        if i + 65 < bytes.Length && bytes[i] = '"'B && bytes[i + 65] = '"'B then Some(i + 1) else None

/// The manifest's bytes with the seal filled in.
let seal (bytes: byte[]) =
    match sealDigits bytes with
    | None -> invalidOp "the manifest has no seal placeholder"
    | Some at ->
        let digits = Encoding.ASCII.GetBytes(sha256 (ReadOnlySpan bytes))
        let withSeal = Array.copy bytes
        Array.blit digits 0 withSeal at 64
        withSeal

/// Checks the seal of a manifest's bytes: any byte changed anywhere, the seal included, is refused.
let verify (file: string) (bytes: byte[]) =
    match sealDigits bytes with
    | None -> corrupt file $"format version 2 needs one \"{sealName}\" field holding 64 hex digits; it is missing or damaged"
    | Some at ->
        let stated = Encoding.ASCII.GetString(bytes, at, 64)
        let zeroed = Array.copy bytes
        Array.blit (Encoding.ASCII.GetBytes placeholder) 0 zeroed at 64
        let actual = sha256 (ReadOnlySpan zeroed)
        if stated <> actual then
            corrupt file $"{sealName} is {stated} but the manifest's SHA-256 is {actual}: the file is corrupt or was edited"
