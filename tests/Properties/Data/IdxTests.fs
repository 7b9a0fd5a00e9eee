/// The idx reader against files written byte by byte here (raw and gzipped), the Fashion-MNIST loader
/// on a generated folder, its errors, and dynamic binarisation's mean against the grey level.
module Flows.Properties.Data.IdxTests

open System
open System.IO
open System.IO.Compression
open Xunit
open Flows.Data
open Flows.Datasets
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

let private tempFolder () =
    let d = Path.Combine(Path.GetTempPath(), "flows-idx-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// An idx file assembled by hand: header bytes written literally.
let private handWritten (path: string) (dims: int[]) (data: byte[]) =
    let header = [| 0uy; 0uy; 0x08uy; byte dims.Length |]
    let dimBytes = dims |> Array.collect (fun d -> [| byte (d >>> 24); byte (d >>> 16); byte (d >>> 8); byte d |])
    let all = Array.concat [ header; dimBytes; data ]
    if path.EndsWith ".gz" then
        use f = File.Create path
        use gz = new GZipStream(f, CompressionMode.Compress)
        gz.Write(all, 0, all.Length)
    else File.WriteAllBytes(path, all)

[<Theory>]
[<InlineData("a.idx")>]
[<InlineData("a.idx.gz")>]
let ``reads the dimensions and bytes of a hand-written idx file`` (name: string) =
    let dir = tempFolder ()
    let data = Array.init (2 * 3 * 4) (fun i -> byte (i * 7 % 256))
    handWritten (Path.Combine(dir, name)) [| 2; 3; 4 |] data
    let a = Idx.read (Path.Combine(dir, name))
    Assert.Equal<int[]>([| 2; 3; 4 |], a.Dims)
    Assert.Equal<byte[]>(data, a.Bytes)

[<Fact>]
let ``a truncated or foreign file is an error that says what is wrong`` () =
    let dir = tempFolder ()
    let short = Path.Combine(dir, "short.idx")
    handWritten short [| 10 |] [| 1uy; 2uy |]
    let e = Assert.Throws<InvalidDataException>(fun () -> Idx.read short |> ignore)
    Assert.Contains("expected 10 data bytes", e.Message)
    let foreign = Path.Combine(dir, "foreign.idx")
    File.WriteAllBytes(foreign, [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0uy; 0uy; 0uy; 0uy |])
    Assert.Contains("not an idx file", (Assert.Throws<InvalidDataException>(fun () -> Idx.read foreign |> ignore)).Message)

[<Fact>]
let ``the Fashion-MNIST loader reads images and labels from a folder and says how to get the data`` () =
    let dir = tempFolder ()
    let pixels = Array.init (3 * 28 * 28) (fun i -> byte ((i * 13) % 256))
    handWritten (Path.Combine(dir, "t10k-images-idx3-ubyte.gz")) [| 3; 28; 28 |] pixels
    handWritten (Path.Combine(dir, "t10k-labels-idx1-ubyte")) [| 3 |] [| 9uy; 0uy; 4uy |]
    let split = FashionMnist.loadFrom dir "t10k" (Some 2)
    Assert.Equal<int[]>([| 2; 1; 28; 28 |], split.Images.shape)
    Assert.Equal<int[]>([| 9; 0 |], split.Labels)
    let expected = pixels |> Array.take (2 * 28 * 28) |> Array.map float32
    Assert.Equal<float32[]>(expected, split.Images.toArray32())
    let missing = Assert.Throws<FileNotFoundException>(fun () -> FashionMnist.loadFrom dir "train" None |> ignore)
    Assert.Contains("dataset-fashion-mnist", missing.Message)
    Assert.Throws<ArgumentException>(fun () -> FashionMnist.loadFrom dir "test" None |> ignore) |> ignore

[<Fact>]
let ``dynamic binarisation gives 0 or 1 with the grey level's probability, afresh per call`` () =
    let gen = Generator 5UL
    let levels = [| 0.0; 51.0; 128.0; 255.0 |]
    let n = 20000
    let k = Tensor.ofArray(Array.init (n * 4) (fun i -> levels[i % 4]), [| n; 4 |])
    let b = Images.binarise gen 256 k
    let values = b.toArray64()
    Assert.All(values, fun v -> Assert.True((v = 0.0 || v = 1.0), $"binarised value {v}"))
    for j in 0 .. 3 do
        let p = levels[j] / 255.0
        let mean = Array.init n (fun i -> values[i * 4 + j]) |> Array.average
        let se = sqrt (max (p * (1.0 - p)) 1e-12 / float n)
        Close.scalar $"mean of level {levels[j]}" { Abs = 5.0 * se + 1e-12; Rel = 0.0 } p mean
    Assert.NotEqual<float[]>(values, (Images.binarise gen 256 k).toArray64())
