/// A bijector from outside the library (this test assembly) registers its codec, saves and loads
/// like the library's, and passes the public law suite; a wrong one fails the laws it breaks.
module Flows.Properties.Bijectors.RegisteredBijectorTests

open System
open System.IO
open Xunit
open Flows
open Flows.Distributions
open Flows.Io
open Flows.Laws
open Flows.Tensors

/// y = x·exp(s) + t per column with learnable s and t; log|det| = Σ s, plus `offset` forward and
/// minus it inverse (a deliberately wrong log-det when `offset` is not 0).
let private scaleShift (name: string) (offset: float) (dtype: Dtype) (dim: int) =
    let forward (p: Params) (_: Context) (x: Tensor) =
        let s = p["s"]
        x * s.exp() + p["t"], (s.sum() + offset).expand [| x.shape[0] |]
    let inverse (p: Params) (_: Context) (y: Tensor) =
        let s = p["s"]
        (y - p["t"]) * (-s).exp(), (-(s.sum()) - offset).expand [| y.shape[0] |]
    Bijector.create name (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
        (Params.ofList [ "s", Tensor.zeros([| dim |], dtype); "t", Tensor.zeros([| dim |], dtype) ]) forward inverse

let private register (name: string) (offset: float) =
    Catalogue.register (Codec.exact name (fun dtype settings -> scaleShift name offset dtype (Settings.int "dim" settings)))

/// A registered instance away from the identity.
let private instance (name: string) (offset: float) (seed: uint64) (dim: int) =
    register name offset
    scaleShift name offset Dtype.Float64 dim |> Entry.perturb (Generator seed) 0.5

[<Fact>]
let ``a registered bijector from another assembly saves and loads bit-identically`` () =
    let b = instance "test-scale-shift" 0.0 5UL 3
    let model = Model.ofFlow 0 (Flow.create (Distribution.standardNormal [| 3 |] Dtype.Float64) [ b; Bijectors.Permute.create [| 2; 0; 1 |]; b ])
    let folder = Path.Combine(Path.GetTempPath(), $"flows-registered-{Guid.NewGuid():N}")
    try
        ModelFile.save folder model
        let loaded = ModelFile.load folder
        Assert.Equal<string list>([ "test-scale-shift"; "permute"; "test-scale-shift" ], loaded.Flow.Layers |> List.map _.Name)
        for saved, back in List.zip model.Flow.Layers loaded.Flow.Layers do
            Assert.Equal<string[]>(saved.Params.Names, back.Params.Names)
            for t, t' in Array.zip saved.Params.Values back.Params.Values do
                Assert.Equal<float[]>(t.toArray64(), t'.toArray64())
        let x = (Generator 9UL).normal([| 7; 3 |], dtype = Dtype.Float64)
        Assert.Equal<float[]>((Model.logProb Context.none x model).toArray64(), (Model.logProb Context.none x loaded).toArray64())
    finally
        if Directory.Exists folder then Directory.Delete(folder, true)

[<Theory; InlineData(1); InlineData(2); InlineData(3)>]
let ``a registered bijector from another assembly passes every law`` (dim: int) =
    let b = instance "test-scale-shift" 0.0 (uint64 (6 + dim)) dim
    let reports = Laws.check (LawOptions.forBijector b) b
    Assert.Equal<Law list>(Law.all, reports |> List.map _.Law)
    LawReport.assertAll b.Name reports
    // on the real line there is no bounded domain to leave; off the plane no integral to take
    let notApplicable = if dim = 2 then [ Law.DomainErrors ] else [ Law.DomainErrors; Law.Normalisation ]
    Assert.Equal<Law list>(notApplicable, reports |> List.filter (fun r -> r.Verdict = Verdict.NotApplicable) |> List.map _.Law)

[<Fact>]
let ``a log-det off by a constant fails exactly the laws that compare it with the Jacobian's`` () =
    // the offset cancels between forward and inverse and between the layers of a composition, so
    // only the Jacobian laws and the integral (e^1 instead of 1) can see it
    let b = instance "test-scale-shift-off-by-one" 1.0 7UL 2
    let failed = Laws.check (LawOptions.forBijector b) b |> List.filter (LawReport.holds >> not)
    Assert.Equal<Law list>([ Law.ForwardLogDet; Law.InverseLogDet; Law.Normalisation ], failed |> List.map _.Law)
    let normalisation = failed |> List.find (fun r -> r.Law = Law.Normalisation)
    Assert.Equal(1.0, normalisation.WorstError, 2)
    let forwardLogDet = failed |> List.find (fun r -> r.Law = Law.ForwardLogDet)
    Assert.Equal(1.0, forwardLogDet.WorstError, 9)
    let error = Assert.Throws<LawException>(fun () -> LawReport.assertAll b.Name failed)
    Assert.Contains("forward-log-det", error.Message)

[<Fact>]
let ``an unregistered bijector fails save-load, and a library name cannot be taken`` () =
    let b = scaleShift "test-never-registered" 0.0 Dtype.Float64 2
    let report = Laws.run Law.SaveLoad LawOptions.defaults b
    Assert.Equal(Verdict.Fails, report.Verdict)
    Assert.Contains("Catalogue.register", report.Detail)
    let error = Assert.Throws<ArgumentException>(fun () -> register "affine" 0.0)
    Assert.Equal("codec", error.ParamName)
