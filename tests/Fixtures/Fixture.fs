namespace Flows.Fixtures

open Flows
open Flows.Tensors

/// A case the law suite draws: a catalogue entry (or a test variant of one) with the random
/// instances and the dimensions to draw. `Name` names the case; the bijectors it draws are named
/// after `Entry`, whose codec rebuilds them.
[<NoEquality; NoComparison>]
type Fixture =
    { Name: string
      Entry: Entry
      /// The bijector as a user creates it, for dimension `dim`.
      Create: Generator -> Dtype -> int -> Bijector
      /// A random instance away from the initial parameters, for dimension `dim`.
      Random: Generator -> Dtype -> int -> Bijector
      Dims: int list
      ContextDim: int option
      /// True when `Create` promises the identity map.
      IdentityAtInit: bool }

    member f.Build = f.Entry.Build
    member f.Codec = f.Entry.Codec
    member f.Domain = f.Entry.Domain
    member f.InverseKind = f.Entry.InverseKind
    member f.LogDetKind = f.Entry.LogDetKind

/// Building fixtures from entries.
[<RequireQualifiedAccess>]
module Fixture =

    /// The entry's layer with `random` instances over `dims`.
    let withRandom (dims: int list) (random: Generator -> Dtype -> int -> Bijector) (entry: Entry) : Fixture =
        { Name = entry.Name
          Entry = entry
          Create = entry.Create
          Random = random
          Dims = dims
          ContextDim = entry.ContextDim
          IdentityAtInit = entry.IdentityAtInit }

    /// The entry's layer perturbed by N(0, scale²) per parameter, over `dims`.
    let perturbed (scale: float) (dims: int list) (entry: Entry) =
        entry |> withRandom dims (fun g t d -> entry.Create g t d |> Entry.perturb g scale)

    /// The entry's layer as created (it has no parameters, or a random creation), over `dims`.
    let asCreated (dims: int list) (entry: Entry) = entry |> withRandom dims entry.Create
