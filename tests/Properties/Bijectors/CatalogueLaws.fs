/// The law suite over the whole catalogue, through the public `Flows.Laws`: every law on every
/// entry (one test case per entry), random parameters away from the initial ones, random
/// dimension and batch, in float64.
module Flows.Properties.Bijectors.CatalogueLaws

open System
open Xunit
open Flows
open Flows.Distributions
open Flows.Laws
open Flows.Tensors
open Flows.Properties.Support

let private namesWhere (keep: Flows.Fixtures.Fixture -> bool) : seq<obj[]> =
    Fixtures.all |> Seq.filter keep |> Seq.map (fun e -> [| box e.Name |])

/// Every catalogue entry.
let names = namesWhere (fun _ -> true)
/// Entries that promise the identity at initialisation.
let identityNames = namesWhere (fun e -> e.IdentityAtInit)
/// Entries with learnable parameters.
let learnableNames = namesWhere (fun e -> (e.Create (Generator 1UL) Dtype.Float64 (List.head e.Dims)).Params.Count > 0)
/// Entries whose inverse accepts only part of the real line.
let boundedNames = namesWhere (fun e -> e.Domain <> Domain.Real)
/// Entries that map the plane to the plane (for the normalisation law).
let planarNames = namesWhere (fun e -> e.Domain = Domain.Real && List.contains 2 e.Dims && e.ContextDim.IsNone)

[<Theory; MemberData(nameof names)>]
let ``inverse undoes forward`` (name: string) = LawCase.holds 10 Law.InverseUndoesForward (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``forward undoes inverse`` (name: string) = LawCase.holds 10 Law.ForwardUndoesInverse (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``forward log-det equals log|det| of the autodiff Jacobian`` (name: string) = LawCase.holds 8 Law.ForwardLogDet (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``inverse log-det equals log|det| of the inverse's autodiff Jacobian`` (name: string) = LawCase.holds 8 Law.InverseLogDet (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``inverse log-det is minus the forward log-det at the matching point`` (name: string) = LawCase.holds 10 Law.LogDetsCancel (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``a composition's log-det is the sum of its layers' and its inverse runs them backwards`` (name: string) =
    LawCase.holds 6 Law.Composition (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``a batch gives the same rows as the rows one by one`` (name: string) = LawCase.holds 5 Law.BatchConsistency (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``float32 agrees with float64`` (name: string) = LawCase.holds 5 Law.Float32MatchesFloat64 (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``outputs stay finite at extreme inputs`` (name: string) = LawCase.holds 5 Law.FiniteAtExtremes (Fixtures.find name)

[<Theory; MemberData(nameof boundedNames)>]
let ``inputs outside the domain raise a clear error`` (name: string) = LawCase.holds 3 Law.DomainErrors (Fixtures.find name)

[<Theory; MemberData(nameof learnableNames)>]
let ``every parameter gets a finite gradient, non-zero exactly when it moves the density`` (name: string) =
    LawCase.holds 4 Law.ParameterGradients (Fixtures.find name)

[<Theory; MemberData(nameof names)>]
let ``sampling with log-density in one pass equals sampling then scoring`` (name: string) =
    LawCase.holds 4 Law.SampleAndLogProb (Fixtures.find name)

[<Theory; MemberData(nameof planarNames)>]
let ``a flow on the plane integrates to one`` (name: string) =
    let entry = Fixtures.find name
    let options = LawOptions.forCodec entry.Codec
    let report = Laws.runOn Law.Normalisation options [ LawSample.draw options 2 11 ] (entry.Random (Generator 11UL) Dtype.Float64 2)
    LawReport.assertAll name [ report ]
    Assert.Equal(Verdict.Holds, report.Verdict)

[<Theory; MemberData(nameof names)>]
let ``rebuilding from settings gives the same map`` (name: string) = LawCase.holds 3 Law.SaveLoad (Fixtures.find name)

// Not laws of a bijector but promises of a catalogue entry and of Flow.

[<Theory; MemberData(nameof identityNames)>]
let ``the initial bijector is the identity`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let b = case.Fixture.Create (Generator(uint64 case.Seed)) Dtype.Float64 case.Dim
        let y, logDet = Bijector.forward case.Context case.X b
        Close.tensors $"{name}: initial output" Tolerance.float64 case.X y
        Close.tensors $"{name}: initial log-det" Tolerance.float64 (logDet.zerosLike()) logDet)

[<Theory; MemberData(nameof names)>]
let ``a flow rejects rows of the wrong size with a clear error`` (name: string) =
    let entry = Fixtures.find name
    let flow = Flow.create (Distribution.standardNormal [| List.head entry.Dims |] Dtype.Float64) [ entry.Create (Generator 3UL) Dtype.Float64 (List.head entry.Dims) ]
    let wrong = Tensor.zeros([| 4; List.head entry.Dims + 1 |], Dtype.Float64)
    let error = Assert.Throws<ArgumentException>(fun () -> Flow.logProb Context.none wrong flow |> ignore)
    Assert.Equal("x", error.ParamName)
    Assert.Contains(Shape.show wrong.shape, error.Message)
