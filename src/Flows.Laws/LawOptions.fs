namespace Flows.Laws

open Flows

/// How the laws are checked: which laws, on how many random batches, to which tolerances, and
/// what the bijector expects of its inputs. Immutable; start from `LawOptions.defaults` or
/// `LawOptions.forBijector` and change fields with `{ o with ... }`.
[<NoEquality; NoComparison>]
type LawOptions =
    { /// The laws to check.
      Laws: Law list
      /// Random batches per law.
      Cases: int
      /// Rows per batch are drawn from 1 to MaxBatch.
      MaxBatch: int
      /// Seed of the batches (the same seed checks the same inputs).
      Seed: int
      /// How close a round trip must come back.
      RoundTrip: Tolerance
      /// How close a log-det must come to the autodiff Jacobian's, and the inverse's to minus the forward's.
      LogDet: Tolerance
      /// Two float64 routes to one value (composition, save/load, sampling).
      SameValue: Tolerance
      /// Float32 against float64.
      Float32: Tolerance
      /// The largest |log ∫ q| allowed by the normalisation law.
      Normalisation: float
      /// Where the inverse's inputs may lie.
      Domain: Domain
      /// Columns of the context a conditional bijector reads (0: unconditional).
      ContextDim: int
      /// A second instance for the composition law, from the seed of the batch (None: the bijector itself).
      Partner: (int -> Bijector) option }

/// Option presets.
[<RequireQualifiedAccess>]
module LawOptions =

    /// Every law, 5 batches of up to 64 rows, closed-form tolerances, the real line.
    let defaults =
        { Laws = Law.all
          Cases = 5
          MaxBatch = 64
          Seed = 20240917
          RoundTrip = Tolerance.exactRoundTrip
          LogDet = Tolerance.exactLogDet
          SameValue = Tolerance.float64
          Float32 = Tolerance.float32AgainstFloat64
          Normalisation = 5e-3
          Domain = Domain.Real
          ContextDim = 0
          Partner = None }

    /// The tolerances an inverse of this kind and a log-det of this kind earn.
    let forKinds (inverse: InverseKind) (logDet: LogDetKind) (options: LawOptions) =
        let roundTrip =
            match inverse with
            | InverseKind.Exact -> Tolerance.exactRoundTrip
            | InverseKind.Iterative tolerance -> Tolerance.iterativeRoundTrip tolerance
        let logDetTolerance =
            match logDet, inverse with
            | LogDetKind.Approximate error, _ -> Tolerance.approximateLogDet error
            | _, InverseKind.Exact -> Tolerance.exactLogDet
            | _, InverseKind.Iterative tolerance -> Tolerance.iterativeLogDet tolerance
        { options with RoundTrip = roundTrip; LogDet = logDetTolerance }

    /// The defaults with the domain and tolerances a codec states.
    let forCodec (codec: Codec) =
        { forKinds codec.InverseKind codec.LogDetKind defaults with Domain = codec.Domain }

    /// The options of the bijector's registered codec, or the defaults when it has none.
    let forBijector (bijector: Bijector) =
        match Catalogue.tryFindCodec bijector.Name with
        | Some codec -> forCodec codec
        | None -> defaults
