/// Model files: the safetensors layout read back by hand, and save → load round trips that must
/// reproduce log-densities bit for bit, for every catalogue entry and for whole flows.
module Flows.Properties.Io.ModelFileTests

open System
open System.IO
open System.Text.Json
open Xunit
open Flows
open Flows.Bijectors
open Flows.Continuous
open Flows.Data
open Flows.Distributions
open Flows.Io
open Flows.Nn
open Flows.Properties.Bijectors
open Flows.Tensors

let private temporaryDirectory () = Path.Combine(Path.GetTempPath(), $"flows-test-{Guid.NewGuid():N}")

let private roundTrip (model: Model) =
    let dir = temporaryDirectory ()
    try
        ModelFile.save dir model
        ModelFile.load dir
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)

let private bits (t: Tensor) =
    match t.dtype with
    | Dtype.Float64 -> t.toArray64() |> Array.map BitConverter.DoubleToInt64Bits
    | _ -> t.toArray32() |> Array.map (fun v -> int64 (BitConverter.SingleToInt32Bits v))

[<Fact>]
let ``the weights file has the safetensors layout`` () =
    let a = Tensor.ofArray([| 1.5f; -2.0f; 3.25f; 0.125f; 7.0f; -0.5f |], [| 2; 3 |])
    let b = Tensor.ofArray([| Math.PI; Math.E |], [| 2 |])
    let bytes = SafeTensors.toBytes (Map.ofList [ "k", "v" ]) [ "layers.0.a", a; "base.b", b ]
    // read it back by hand: u64 header length, JSON header, data at the stated offsets
    let headerLength = int (BitConverter.ToUInt64(bytes, 0))
    Assert.Equal(0, (8 + headerLength) % 8)
    use header = JsonDocument.Parse(ReadOnlyMemory(bytes, 8, headerLength))
    let entry (name: string) = header.RootElement.GetProperty name
    Assert.Equal("v", entry("__metadata__").GetProperty("k").GetString())
    Assert.Equal("F32", entry("layers.0.a").GetProperty("dtype").GetString())
    Assert.Equal<int[]>([| 2; 3 |], [| for n in entry("layers.0.a").GetProperty("shape").EnumerateArray() -> n.GetInt32() |])
    let offsets (name: string) = [| for n in entry(name).GetProperty("data_offsets").EnumerateArray() -> n.GetInt32() |]
    Assert.Equal<int[]>([| 0; 24 |], offsets "layers.0.a")
    Assert.Equal<int[]>([| 24; 40 |], offsets "base.b")
    let data = 8 + headerLength
    Assert.Equal(data + 40, bytes.Length)
    Assert.Equal<float32[]>(a.toArray32(), Array.init 6 (fun i -> BitConverter.ToSingle(bytes, data + 4 * i)))
    Assert.Equal<float[]>([| Math.PI; Math.E |], Array.init 2 (fun i -> BitConverter.ToDouble(bytes, data + 24 + 8 * i)))
    let parsed = SafeTensors.ofBytes "test" bytes
    Assert.Equal<string list>([ "layers.0.a"; "base.b" ], parsed.Tensors |> List.map fst)
    Assert.Equal<int64[]>(bits a, bits (snd parsed.Tensors[0]))

[<Fact>]
let ``every catalogue entry saved and reloaded gives bit-identical log-densities`` () =
    for entry in Catalogue.all do
        let case = LawCase.build entry 11 16
        let gen = Generator 5UL
        let baseDistribution = Distribution.diagonalNormal [| case.Dim |] Dtype.Float64
        let baseDistribution = { baseDistribution with Params = baseDistribution.Params.Map(fun t -> t + gen.normal(t.shape, 0.0, 0.3, t.dtype)) }
        let model = Model.ofFlow (defaultArg entry.ContextDim 0) (Flow.create baseDistribution [ case.Bijector ])
        let loaded = roundTrip model
        let expected = Model.logProb case.Context case.Y model
        let actual = Model.logProb case.Context case.Y loaded
        Assert.True(bits expected = bits actual, $"{entry.Name}: log-densities {expected.toArray64()} became {actual.toArray64()} after save and load")
        Assert.Equal<string>(entry.Name + string case.Bijector.Settings, entry.Name + string loaded.Flow.Layers.Head.Settings)

[<Fact>]
let ``a whole float32 flow with buffers, inverted layers, a mixture base and standardisation round-trips`` () =
    let gen = Generator 21UL
    let dim = 3
    let data = gen.normal([| 64; dim |], 2.0, 3.0, Dtype.Float32)
    let standardisation = Standardisation.ofRows data
    let layers =
        [ ActNorm.create Dtype.Float32 dim
          Coupling.realNvp gen Dtype.Float32 dim [ 8 ] (Coupling.Mask.Alternating false)
          Permute.create [| 2; 0; 1 |]
          Autoregressive.iaf gen Dtype.Float32 { Dim = dim; Hidden = [ 8 ]; Order = Order.Random 3; Activation = Activation.Tanh; ResidualBlocks = 0; Clamp = 3.0; ContextDim = 0 }
          Bijector.invert (Radial.create gen Dtype.Float32 dim)
          BatchNorm.create 0.1 Dtype.Float32 dim ]
        |> List.map (Entry.perturb gen 0.2)
    let mixture = Distribution.gaussianMixture (gen.normal([| 4; dim |], dtype = Dtype.Float32)) 0.7
    let flow = Flow.create mixture layers |> Flow.observe Context.training (Standardisation.apply standardisation data)
    let model = { (Model.ofFlow 0 flow) with Standardisation = Some standardisation }
    let loaded = roundTrip model
    Assert.Equal<int64[]>(bits (Model.logProb Context.none data model), bits (Model.logProb Context.none data loaded))
    Assert.Equal<int64[]>(bits (Model.sample Context.none (Generator 3UL) 20 model), bits (Model.sample Context.none (Generator 3UL) 20 loaded))
    Assert.Equal<float[]>(standardisation.Scale, loaded.Standardisation.Value.Scale)

[<Fact>]
let ``standardisation changes log-densities by the log-scale of the columns`` () =
    // log p(x) = log q((x − m)/s) − Σ log s: checked against the flow on hand-standardised rows
    let gen = Generator 8UL
    let x = gen.normal([| 10; 2 |], 1.0, 4.0, Dtype.Float64)
    let s = Standardisation.ofRows x
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ Coupling.realNvp gen Dtype.Float64 2 [ 4 ] (Coupling.Mask.Half false) |> Entry.perturb gen 0.3 ]
    let column j = Array.init 10 (fun i -> x.toArray64()[2 * i + j])
    let mean j = Array.average (column j)
    let std j = sqrt (column j |> Array.averageBy (fun v -> (v - mean j) ** 2.0))
    let byHand = Tensor.ofArray(Array.init 20 (fun k -> (x.toArray64()[k] - mean (k % 2)) / std (k % 2)), [| 10; 2 |])
    let expected = (Flow.logProb Context.none byHand flow).toArray64() |> Array.map (fun v -> v - log (std 0) - log (std 1))
    let actual = (Model.logProb Context.none x { (Model.ofFlow 0 flow) with Standardisation = Some s }).toArray64()
    Array.iter2 (fun e a -> Assert.True(abs (e - a) < 1e-10, $"{a} against {e}")) expected actual

[<Fact>]
let ``a saved manifest is version 2 and sealed with the SHA-256 of its bytes with the seal zeroed`` () =
    let dir = temporaryDirectory ()
    try
        let gen = Generator 4UL
        ModelFile.save dir (Model.ofFlow 0 (Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) [ Coupling.realNvp gen Dtype.Float32 2 [ 4 ] (Coupling.Mask.Half false) ]))
        let text = File.ReadAllText(Path.Combine(dir, ModelFile.manifestName))
        use json = JsonDocument.Parse text
        Assert.Equal(2, json.RootElement.GetProperty("version").GetInt32())
        let seal = json.RootElement.GetProperty("manifestSha256").GetString()
        let zeroed = text.Replace(seal, String('0', 64))
        let expected = Convert.ToHexStringLower(Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes zeroed))
        Assert.Equal(expected, seal)
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)

[<Fact>]
let ``a safetensors header or offsets beyond the file are refused before the tensors are allocated`` () =
    let bytes = SafeTensors.toBytes Map.empty [ "w", Tensor.ofArray([| 1.0f; 2.0f; 3.0f; 4.0f |], [| 2; 2 |]) ]
    let longHeader = Array.copy bytes
    BitConverter.GetBytes(Int64.MaxValue).CopyTo(longHeader, 0)
    let error = Assert.Throws<InvalidDataException>(fun () -> SafeTensors.ofBytes "w.safetensors" longHeader |> ignore)
    Assert.StartsWith("w.safetensors: truncated or not a safetensors file", error.Message)
    // the same header claiming [2, 1e9] elements: the offsets then lie far beyond the 16 data bytes
    let headerLength = int (BitConverter.ToInt64(bytes, 0))
    let header = Text.Encoding.UTF8.GetString(bytes, 8, headerLength)
    let huge = header.Replace("[2,2]", "[2,1000000000]").Replace("[0,16]", "[0,8000000000]")
    Assert.NotEqual<string>(header, huge)
    let hugeBytes = Text.Encoding.UTF8.GetBytes(huge.TrimEnd())
    let padded = Array.append hugeBytes (Array.create ((8 - hugeBytes.Length % 8) % 8) (byte ' '))
    let forged = Array.concat [ BitConverter.GetBytes(int64 padded.Length); padded; bytes[8 + headerLength ..] ]
    let before = GC.GetAllocatedBytesForCurrentThread()
    let error = Assert.Throws<InvalidDataException>(fun () -> SafeTensors.ofBytes "w.safetensors" forged |> ignore)
    Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000L)
    Assert.Equal("w.safetensors: truncated: tensor 'w' ends at data byte 8000000000 but the file holds 16 data bytes", error.Message)

[<Fact>]
let ``the allocation budget refuses a tensor before its storage exists and ends with its scope`` () =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let error =
        Assert.Throws<AllocationBudgetException>(fun () ->
            AllocationBudget.Within(1_000_000L, fun () -> (Generator 1UL).normal([| 1_000_000; 1_000 |], dtype = Dtype.Float64)) |> ignore)
    Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000L)
    Assert.Contains("[1000000, 1000]", error.Message)
    // charges add up within one scope: two 400 kB tensors fit in 1 MB, a third does not
    AllocationBudget.Within(1_000_000L, fun () ->
        Tensor.zeros([| 50_000 |], Dtype.Float64) |> ignore
        Tensor.zeros([| 50_000 |], Dtype.Float64) |> ignore
        Assert.Throws<AllocationBudgetException>(fun () -> Tensor.zeros([| 50_000 |], Dtype.Float64) |> ignore) |> ignore)
    // outside any scope nothing is refused
    Assert.Equal(50_000, (Tensor.zeros([| 50_000 |], Dtype.Float64)).shape[0])

[<Fact>]
let ``a conditional model keeps its context standardisation through save and load`` () =
    let entry = Catalogue.all |> List.find (fun e -> e.ContextDim.IsSome)
    let case = LawCase.build entry 13 16
    let k = entry.ContextDim.Value
    let contextStandardisation = { Mean = Array.init k (fun j -> 0.5 * float j - 0.25); Scale = Array.init k (fun j -> 1.5 + float j) }
    let flow = Flow.create (Distribution.diagonalNormal [| case.Dim |] Dtype.Float64) [ case.Bijector ]
    let model = { Model.ofFlow k flow with ContextStandardisation = Some contextStandardisation }
    let loaded = roundTrip model
    Assert.Equal<float[]>(contextStandardisation.Mean, loaded.ContextStandardisation.Value.Mean)
    Assert.Equal<float[]>(contextStandardisation.Scale, loaded.ContextStandardisation.Value.Scale)
    Assert.Equal<int64[]>(bits (Model.logProb case.Context case.Y model), bits (Model.logProb case.Context case.Y loaded))
    // and the standardisation matters: without it the log-densities differ
    let unstandardised = Model.logProb case.Context case.Y { loaded with ContextStandardisation = None }
    Assert.NotEqual<int64[]>(bits (Model.logProb case.Context case.Y loaded), bits unstandardised)

[<Fact>]
let ``RNODE, STEER and OT-Flow fittings are saved with their weights and read back exactly`` () =
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ Cnf.create (Generator 3UL) Dtype.Float64 2 ]
    for fitting in [ Fitting.Rnode(0.01, 0.02, None); Fitting.Rnode(0.1, 0.0, Some 0.25); Fitting.OtFlow(1.0 / 3.0, 5.0) ] do
        Assert.Equal(fitting, (roundTrip { Model.ofFlow 0 flow with Fitting = fitting }).Fitting)
