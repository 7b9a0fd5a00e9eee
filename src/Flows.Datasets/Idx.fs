namespace Flows.Datasets

open System
open System.IO
open System.IO.Compression
open Flows
open Flows.Tensors

/// A tensor read from an idx file: its dimensions and its unsigned bytes, row-major.
type IdxArray =
    { Dims: int[]
      Bytes: byte[] }

/// The idx format of MNIST and Fashion-MNIST (LeCun's): a big-endian header of two zero bytes, a
/// type code (0x08 for unsigned bytes, the only one these datasets use), the number of dimensions,
/// then each dimension as a 32-bit integer, then the data. Files ending in `.gz` are gunzipped.
[<RequireQualifiedAccess>]
module Idx =

    let private readBigEndian (r: BinaryReader) =
        let b = r.ReadBytes 4
        if b.Length < 4 then raise (InvalidDataException "the idx header ends early")
        (int b[0] <<< 24) ||| (int b[1] <<< 16) ||| (int b[2] <<< 8) ||| int b[3]

    /// Parses an idx stream of unsigned bytes.
    let ofStream (name: string) (stream: Stream) =
        use r = new BinaryReader(stream)
        let magic = readBigEndian r
        if magic >>> 16 <> 0 then raise (InvalidDataException $"{name}: not an idx file (magic 0x{magic:X8})")
        let typeCode, rank = (magic >>> 8) &&& 0xFF, magic &&& 0xFF
        if typeCode <> 0x08 then raise (InvalidDataException $"{name}: idx type 0x{typeCode:X2} is not unsigned bytes (0x08)")
        if rank < 1 then raise (InvalidDataException $"{name}: idx rank {rank}, expected at least 1")
        let dims = Array.init rank (fun _ -> readBigEndian r)
        if dims |> Array.exists (fun d -> d < 0) then raise (InvalidDataException $"{name}: negative idx dimension in {Shape.show dims}")
        let count = dims |> Array.fold (fun acc d -> acc * int64 d) 1L
        if count > int64 Int32.MaxValue then raise (InvalidDataException $"{name}: {count} elements is too many")
        let bytes = r.ReadBytes(int count)
        if int64 bytes.Length <> count then
            raise (InvalidDataException $"{name}: expected {count} data bytes for shape {Shape.show dims}, found {bytes.Length}")
        { Dims = dims; Bytes = bytes }

    /// Reads an idx file, gunzipping it when its name ends in `.gz`.
    let read (path: string) =
        if not (File.Exists path) then raise (FileNotFoundException($"no idx file at '{path}'", path))
        use file = File.OpenRead path
        if path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) then
            use gz = new GZipStream(file, CompressionMode.Decompress)
            ofStream path gz
        else ofStream path file

/// One split of an MNIST-style dataset: grey levels [n; 1; height; width] (0 .. 255 as floats) and
/// the class of each image.
type LabelledImages =
    { Images: Tensor
      Labels: int[] }

/// Fashion-MNIST (Xiao et al. 2017) from its idx files: Debian's `dataset-fashion-mnist` package puts
/// them in /usr/share/datasets/fashion-mnist; `FLOWS_FASHION_MNIST` names another folder.
[<RequireQualifiedAccess>]
module FashionMnist =

    /// The folder searched when none is given.
    let defaultFolder () =
        match Environment.GetEnvironmentVariable "FLOWS_FASHION_MNIST" with
        | null | "" -> "/usr/share/datasets/fashion-mnist"
        | folder -> folder

    /// The ten class names, by label.
    let classes =
        [| "T-shirt/top"; "Trouser"; "Pullover"; "Dress"; "Coat"; "Sandal"; "Shirt"; "Sneaker"; "Bag"; "Ankle boot" |]

    let private find (folder: string) (stem: string) =
        [ stem + ".gz"; stem ]
        |> List.map (fun f -> Path.Combine(folder, f))
        |> List.tryFind File.Exists
        |> Option.defaultWith (fun () ->
            raise (FileNotFoundException(
                $"Fashion-MNIST's '{stem}(.gz)' is not in '{folder}'. Install it with "
                + "'apt-get install dataset-fashion-mnist' (as root, or with sudo), or set FLOWS_FASHION_MNIST "
                + "to a folder holding the four idx files.")))

    /// A split ("train" or "t10k", Fashion-MNIST's file prefixes) from `folder`, the first `limit`
    /// images when given (float32 grey levels).
    let loadFrom (folder: string) (split: string) (limit: int option) =
        Guard.that (nameof split) (split = "train" || split = "t10k") $"must be \"train\" or \"t10k\", got \"{split}\""
        limit |> Option.iter (Guard.positive (nameof limit))
        let images = Idx.read (find folder $"{split}-images-idx3-ubyte")
        let labels = Idx.read (find folder $"{split}-labels-idx1-ubyte")
        if images.Dims.Length <> 3 then raise (InvalidDataException $"{split} images: expected rank 3, got shape {Shape.show images.Dims}")
        if labels.Dims.Length <> 1 || labels.Dims[0] <> images.Dims[0] then
            raise (InvalidDataException $"{split}: {labels.Dims[0]} labels for {images.Dims[0]} images")
        let n = min images.Dims[0] (defaultArg limit Int32.MaxValue)
        let h, w = images.Dims[1], images.Dims[2]
        let pixels = Array.init (n * h * w) (fun i -> float32 images.Bytes[i])
        { Images = Tensor.ofArray(pixels, [| n; 1; h; w |])
          Labels = Array.init n (fun i -> int labels.Bytes[i]) }

    /// A split from the default folder.
    let load (split: string) (limit: int option) = loadFrom (defaultFolder ()) split limit
