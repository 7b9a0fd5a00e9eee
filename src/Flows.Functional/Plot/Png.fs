namespace Flows.Plot

open System
open System.IO
open System.IO.Compression

/// An RGB image, row-major from the top-left, one byte per channel.
type Image =
    { Width: int
      Height: int
      Pixels: byte[] }

/// A minimal PNG encoder (8-bit RGB, one IDAT chunk, zlib from the BCL); no plotting package is
/// obtainable here, and heat maps and scatter plots need nothing more.
[<RequireQualifiedAccess>]
module Png =

    let private crcTable =
        Array.init 256 (fun n ->
            let mutable c = uint32 n
            for _ in 0 .. 7 do
                c <- if c &&& 1u <> 0u then 0xEDB88320u ^^^ (c >>> 1) else c >>> 1
            c)

    let private crc (data: byte[]) =
        let mutable c = 0xFFFFFFFFu
        for b in data do
            c <- crcTable[int ((c ^^^ uint32 b) &&& 0xFFu)] ^^^ (c >>> 8)
        c ^^^ 0xFFFFFFFFu

    let private bigEndian (v: uint32) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]

    let private chunk (kind: string) (data: byte[]) =
        let typed = Array.append (Text.Encoding.ASCII.GetBytes kind) data
        Array.concat [ bigEndian (uint32 data.Length); typed; bigEndian (crc typed) ]

    /// A blank image filled with one colour.
    let blank (width: int) (height: int) (r: byte, g: byte, b: byte) =
        let pixels = Array.zeroCreate (width * height * 3)
        for i in 0 .. width * height - 1 do
            pixels[3 * i] <- r
            pixels[3 * i + 1] <- g
            pixels[3 * i + 2] <- b
        { Width = width; Height = height; Pixels = pixels }

    /// The PNG file bytes of an image.
    let encode (image: Image) =
        let header =
            Array.concat [ bigEndian (uint32 image.Width); bigEndian (uint32 image.Height); [| 8uy; 2uy; 0uy; 0uy; 0uy |] ]
        use raw = new MemoryStream()
        do
            use z = new ZLibStream(raw, CompressionLevel.Optimal, true)
            let stride = image.Width * 3
            for y in 0 .. image.Height - 1 do
                z.WriteByte 0uy // filter: none
                z.Write(image.Pixels, y * stride, stride)
        Array.concat
            [ [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
              chunk "IHDR" header
              chunk "IDAT" (raw.ToArray())
              chunk "IEND" [||] ]

    /// Writes the image to `path` through a temporary file and a rename, so a crash never leaves
    /// a half-written picture.
    let save (path: string) (image: Image) =
        let full = Path.GetFullPath path
        let dir = Path.GetDirectoryName full
        if not (String.IsNullOrEmpty dir) then Directory.CreateDirectory dir |> ignore
        let temp = full + ".tmp"
        File.WriteAllBytes(temp, encode image)
        File.Move(temp, full, true)
