namespace Flows.Properties.Bijectors

open FsCheck.FSharp
open Flows
open Flows.Laws
open Flows.Tensors
open Flows.Fixtures
open Flows.Properties.Support

/// One drawn case of a catalogue entry for the law suite: a random instance (float64) and the
/// batch the public laws run on (`Flows.Laws`), with a context when the entry is conditional.
type LawCase =
    { Fixture: Fixture
      Seed: int
      Dim: int
      Bijector: Bijector
      X: Tensor
      Y: Tensor
      Context: Context }

/// Drawing cases and the options the public laws check them with.
[<RequireQualifiedAccess>]
module LawCase =

    /// The case for a seed: dimension from the entry's list, batch 1–batchCap.
    let build (entry: Fixture) (seed: int) (batchCap: int) =
        let gen = Generator(uint64 seed)
        let dims = Array.ofList entry.Dims
        let dim = dims[abs seed % dims.Length]
        let batch = 1 + (abs (seed / 7) % batchCap)
        let context =
            match entry.ContextDim with
            | Some c -> { Condition = Some(gen.normal([| batch; c |], dtype = Dtype.Float64)); Training = false }
            | None -> Context.none
        { Fixture = entry
          Seed = seed
          Dim = dim
          Bijector = entry.Random gen Dtype.Float64 dim
          X = gen.normal([| batch; dim |], 0.0, 1.5, Dtype.Float64)
          Y = LawSample.inDomain gen entry.Domain [| batch; dim |]
          Context = context }

    /// The entry's codec options, with its context width and a second random instance for the
    /// composition law.
    let options (case: LawCase) =
        { LawOptions.forCodec case.Fixture.Codec with
            ContextDim = defaultArg case.Fixture.ContextDim 0
            Partner = Some(fun seed -> case.Fixture.Random (Generator(uint64 seed + 1UL)) Dtype.Float64 case.Dim) }

    /// The case's batch as the public laws take it.
    let sample (case: LawCase) : LawSample = { Seed = case.Seed; X = case.X; Y = case.Y; Context = case.Context }

    /// How close a round trip must come back, as the public laws allow for this entry.
    let roundTrip (entry: Fixture) = (LawOptions.forCodec entry.Codec).RoundTrip

    /// How close two log-dets must agree, as the public laws allow for this entry.
    let logDet (entry: Fixture) = (LawOptions.forCodec entry.Codec).LogDet

    /// Runs `law` on `count` random cases of `entry` (replayable: the failing seed is printed).
    let check (count: int) (entry: Fixture) (law: LawCase -> unit) =
        Gens.check count (Gen.choose (0, System.Int32.MaxValue)) (fun seed -> law (build entry seed 64))

    /// Checks the public law on `count` random cases of `entry`; a law that does not apply fails,
    /// since the suite only asks where it must.
    let holds (count: int) (law: Law) (entry: Fixture) =
        check count entry (fun case ->
            let report = Laws.runOn law (options case) [ sample case ] case.Bijector
            LawReport.assertAll entry.Name [ report ]
            if report.Verdict = Verdict.NotApplicable then failwith $"{entry.Name}: {Law.name law} did not apply")
