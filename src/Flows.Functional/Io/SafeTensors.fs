/// The safetensors layout (Hugging Face): an 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
/// into the data that follows) plus an optional "__metadata__" of strings, then the raw
/// little-endian tensor data, packed without gaps. Python's `safetensors` reads what this writes.
module Flows.Io.SafeTensors

open System
open System.IO
open System.Runtime.InteropServices
open System.Text
open System.Text.Json
open Flows.Tensors

/// The contents of a safetensors file: tensors in file order and the metadata strings.
type Contents =
    { Tensors: (string * Tensor) list
      Metadata: Map<string, string> }

let private dtypeName (dtype: Dtype) =
    match dtype with
    | Dtype.Float32 -> "F32"
    | Dtype.Float64 -> "F64"
    | Dtype.Int32 -> "I32"

let private rawBytes (t: Tensor) : byte[] =
    match t.dtype with
    | Dtype.Float32 -> MemoryMarshal.AsBytes(ReadOnlySpan(t.toArray32())).ToArray()
    | Dtype.Float64 -> MemoryMarshal.AsBytes(ReadOnlySpan(t.toArray64())).ToArray()
    | Dtype.Int32 -> MemoryMarshal.AsBytes(ReadOnlySpan(t.toArrayInt())).ToArray()

/// The file's bytes; tensors are stored in the given order (names must be distinct).
let toBytes (metadata: Map<string, string>) (tensors: (string * Tensor) list) : byte[] =
    // The raw layout is the host's; every platform .NET targets here is little-endian.
    if not BitConverter.IsLittleEndian then raise (PlatformNotSupportedException "safetensors files are little-endian")
    let data = tensors |> List.map (fun (_, t) -> rawBytes (t.noDiff()))
    let header = new MemoryStream()
    (
        use json = new Utf8JsonWriter(header)
        json.WriteStartObject()
        if not metadata.IsEmpty then
            json.WriteStartObject "__metadata__"
            for KeyValue(k, v) in metadata do json.WriteString(k, v)
            json.WriteEndObject()
        let mutable offset = 0L
        for (name, t), bytes in List.zip tensors data do
            json.WriteStartObject name
            json.WriteString("dtype", dtypeName t.dtype)
            json.WriteStartArray "shape"
            for n in t.shape do json.WriteNumberValue n
            json.WriteEndArray()
            json.WriteStartArray "data_offsets"
            json.WriteNumberValue offset
            json.WriteNumberValue(offset + int64 bytes.Length)
            json.WriteEndArray()
            json.WriteEndObject()
            offset <- offset + int64 bytes.Length
        json.WriteEndObject()
    )
    // Pad the header with spaces to a multiple of 8 so the data starts aligned (as Python does).
    let headerBytes = header.ToArray()
    let padded = Array.append headerBytes (Array.create ((8 - headerBytes.Length % 8) % 8) (byte ' '))
    let file = new MemoryStream()
    file.Write(BitConverter.GetBytes(int64 padded.Length), 0, 8)
    file.Write(padded, 0, padded.Length)
    for bytes in data do file.Write(bytes, 0, bytes.Length)
    file.ToArray()

let private corrupt (source: string) (what: string) = raise (InvalidDataException $"{source}: {what}")

let private tensorOf (dtype: string) (shape: int[]) (bytes: ReadOnlySpan<byte>) =
    match dtype with
    | "F32" -> Tensor.ofArray(MemoryMarshal.Cast<byte, float32>(bytes).ToArray(), shape)
    | "F64" -> Tensor.ofArray(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape)
    | _ -> Tensor.ofArray(MemoryMarshal.Cast<byte, int>(bytes).ToArray(), shape)

/// One tensor as the header describes it: where its bytes lie in the data section.
type Entry =
    { Name: string
      Dtype: string
      Shape: int[]
      Begin: int64
      End: int64 }

/// A file's header, checked against the file's length: the entries in data order, the metadata
/// strings and where the data section starts.
type Header =
    { Entries: Entry list
      Metadata: Map<string, string>
      DataStart: int }

// a header is a flat object of small objects: deeper JSON is not a safetensors header
let private headerOptions = JsonDocumentOptions(MaxDepth = 4)

/// Reads and checks the header of a file's bytes without touching the data: a length or offsets
/// beyond the file, negative or overflowing shapes, gaps and wrong types are refused before
/// anything is allocated for the tensors (InvalidDataException naming `source`).
let header (source: string) (bytes: byte[]) : Header =
    if bytes.Length < 8 then corrupt source $"truncated: {bytes.Length} bytes, fewer than the 8-byte header length"
    let headerLength = BitConverter.ToInt64(bytes, 0)
    if headerLength < 2L || headerLength > int64 bytes.Length - 8L then
        corrupt source $"truncated or not a safetensors file: the header claims {headerLength} bytes but the file has {bytes.Length - 8} after the length"
    let dataStart = 8 + int headerLength
    let document =
        try JsonDocument.Parse(ReadOnlyMemory(bytes, 8, int headerLength), headerOptions)
        with :? JsonException as e -> corrupt source $"the header is not valid JSON ({e.Message})"
    use document = document
    if document.RootElement.ValueKind <> JsonValueKind.Object then corrupt source "the header is not a JSON object"
    let dataLength = int64 (bytes.Length - dataStart)
    let mutable metadata = Map.empty
    let entries = ResizeArray<Entry>()
    try
        for property in document.RootElement.EnumerateObject() do
            if property.Name = "__metadata__" then
                for m in property.Value.EnumerateObject() do metadata <- metadata.Add(m.Name, m.Value.GetString())
            else
                let field (key: string) =
                    match property.Value.TryGetProperty key with
                    | true, v -> v
                    | _ -> corrupt source $"tensor '{property.Name}' has no \"{key}\""
                let dtype = field("dtype").GetString()
                let size =
                    match dtype with
                    | "F32" | "I32" -> 4L
                    | "F64" -> 8L
                    | other -> corrupt source $"tensor '{property.Name}' has dtype '{other}'; expected F32, F64 or I32"
                let shape = [| for n in field("shape").EnumerateArray() -> n.GetInt32() |]
                if shape |> Array.exists (fun d -> d < 0) then corrupt source $"tensor '{property.Name}' has a negative dimension in {Shape.show shape}"
                // saturating: a product past the file's length is wrong whatever it overflows to
                let bytesNeeded = shape |> Array.fold (fun n d -> if n > dataLength then n else n * int64 d) size
                let offsets = [| for n in field("data_offsets").EnumerateArray() -> n.GetInt64() |]
                if offsets.Length <> 2 then corrupt source $"tensor '{property.Name}' needs two data offsets, has {offsets.Length}"
                if offsets[0] < 0L || offsets[1] < offsets[0] then corrupt source $"tensor '{property.Name}' has data offsets [{offsets[0]}, {offsets[1]}]"
                if offsets[1] > dataLength then
                    corrupt source $"truncated: tensor '{property.Name}' ends at data byte {offsets[1]} but the file holds {dataLength} data bytes"
                if offsets[1] - offsets[0] <> bytesNeeded then
                    corrupt source $"tensor '{property.Name}' spans {offsets[1] - offsets[0]} bytes; its shape {Shape.show shape} and dtype {dtype} need {bytesNeeded}"
                entries.Add { Name = property.Name; Dtype = dtype; Shape = shape; Begin = offsets[0]; End = offsets[1] }
    // JsonElement getters throw these for a value of the wrong kind (text for a number, ...)
    with e when (e :? InvalidOperationException || e :? FormatException) -> corrupt source $"the header has unexpected content ({e.Message})"
    let ordered = entries |> Seq.sortBy (fun e -> e.Begin) |> List.ofSeq
    let mutable expected = 0L
    for e in ordered do
        if e.Begin <> expected then corrupt source $"tensor '{e.Name}' starts at data byte {e.Begin}; expected {expected} (tensors must be packed without gaps)"
        expected <- e.End
    if expected <> dataLength then
        corrupt source $"the header describes {expected} data bytes but the file holds {dataLength}"
    { Entries = ordered; Metadata = metadata; DataStart = dataStart }

/// The tensors of a file whose header `header` read.
let tensors (header: Header) (bytes: byte[]) : (string * Tensor) list =
    [ for e in header.Entries ->
        e.Name, tensorOf e.Dtype e.Shape (ReadOnlySpan(bytes, header.DataStart + int e.Begin, int (e.End - e.Begin))) ]

/// Parses a file's bytes; `source` names the file in errors. A short file, a malformed header,
/// an unknown dtype, offsets that disagree with the shapes or lie beyond the file, gaps or a
/// truncated data section are reported as InvalidDataException saying what was expected.
let ofBytes (source: string) (bytes: byte[]) : Contents =
    let h = header source bytes
    { Tensors = tensors h bytes; Metadata = h.Metadata }
