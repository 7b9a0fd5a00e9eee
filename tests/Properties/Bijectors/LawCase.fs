namespace Flows.Properties.Bijectors

open FsCheck.FSharp
open Flows
open Flows.Tensors
open Flows.Properties.Support

/// One drawn case of a bijector law: a random instance (float64), a base-side batch `X`, a
/// data-side batch `Y` inside the entry's domain, and a context when the entry is conditional.
type LawCase =
    { Entry: Entry
      Seed: int
      Dim: int
      Bijector: Bijector
      X: Tensor
      Y: Tensor
      Context: Context }

/// Drawing cases and the tolerances the laws use.
[<RequireQualifiedAccess>]
module LawCase =

    /// Points in a domain: the real line, the positive half-line or an open interval.
    let inDomain (gen: Generator) (domain: Domain) (shape: int[]) =
        match domain with
        | Domain.Real -> gen.normal(shape, 0.0, 1.5, Dtype.Float64)
        | Domain.Positive -> gen.normal(shape, 0.0, 1.0, Dtype.Float64).exp()
        | Domain.Interval(low, high) -> gen.uniform(shape, low + 0.01 * (high - low), high - 0.01 * (high - low), Dtype.Float64)

    /// The case for a seed: dimension from the entry's list, batch 1–64.
    let build (entry: Entry) (seed: int) (batchCap: int) =
        let gen = Generator(uint64 seed)
        let dims = Array.ofList entry.Dims
        let dim = dims[abs seed % dims.Length]
        let batch = 1 + (abs (seed / 7) % batchCap)
        let context =
            match entry.ContextDim with
            | Some c -> { Condition = Some(gen.normal([| batch; c |], dtype = Dtype.Float64)); Training = false }
            | None -> Context.none
        { Entry = entry
          Seed = seed
          Dim = dim
          Bijector = entry.Random gen Dtype.Float64 dim
          X = gen.normal([| batch; dim |], 0.0, 1.5, Dtype.Float64)
          Y = inDomain gen entry.Domain [| batch; dim |]
          Context = context }

    /// How close a round trip must come back: float64 for exact inverses, the stated tolerance
    /// (with room for the map's slope) for iterative ones.
    let roundTrip (entry: Entry) =
        match entry.InverseKind with
        | InverseKind.Exact -> { Abs = 1e-9; Rel = 1e-8 }
        | InverseKind.Iterative tolerance -> { Abs = 1e3 * tolerance; Rel = 1e-7 }

    /// How close two log-dets must agree: the stated error of an approximate log-det, else by the
    /// inverse's kind.
    let logDet (entry: Entry) =
        match entry.LogDetKind, entry.InverseKind with
        | LogDetKind.Approximate error, _ -> { Abs = error; Rel = 1e-6 }
        | _, InverseKind.Exact -> { Abs = 1e-8; Rel = 1e-7 }
        | _, InverseKind.Iterative tolerance -> { Abs = 1e3 * tolerance; Rel = 1e-6 }

    /// Runs `law` on `count` random cases of `entry` (replayable: the failing seed is printed).
    let check (count: int) (entry: Entry) (law: LawCase -> unit) =
        Gens.check count (Gen.choose (0, System.Int32.MaxValue)) (fun seed -> law (build entry seed 64))
