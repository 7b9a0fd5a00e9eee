namespace Flows

open System
open System.Reflection
open Flows.Tensors

/// Where a bijector's data-side inputs (the inputs of its inverse) may lie.
[<RequireQualifiedAccess>]
type Domain =
    | Real
    | Positive
    | Interval of low: float * high: float

/// How a bijector inverts: in closed form, or iteratively to a tolerance.
[<RequireQualifiedAccess>]
type InverseKind =
    | Exact
    | Iterative of tolerance: float

/// How a bijector computes log|det J|: exactly, by an unbiased stochastic estimate, or exactly for
/// the map it approximates (UMNN's log f is the derivative of the true integral, its map a
/// quadrature), so the map's own Jacobian agrees only within `error` per row.
[<RequireQualifiedAccess>]
type LogDetKind =
    | Exact
    | Estimated
    | Approximate of error: float

/// How a saved bijector is rebuilt, and what a loader and the law suite must know of it: its
/// name (the bijector's own `Name`), the builder from saved settings (parameters are then
/// replaced by the saved ones), where its inverse's inputs may lie, and how it inverts and
/// computes its log-det. Register one with `Catalogue.register` to save and load a new bijector.
[<NoEquality; NoComparison>]
type Codec =
    { Name: string
      Build: Dtype -> Settings -> Bijector
      Domain: Domain
      InverseKind: InverseKind
      LogDetKind: LogDetKind }

/// Codec presets.
[<RequireQualifiedAccess>]
module Codec =

    /// A codec for a real-domain, exactly invertible bijector with an exact log-det.
    let exact (name: string) (build: Dtype -> Settings -> Bijector) : Codec =
        { Name = name
          Build = build
          Domain = Domain.Real
          InverseKind = InverseKind.Exact
          LogDetKind = LogDetKind.Exact }

/// A catalogue entry: a codec with the layer as a user creates it for a dimension, so a layer can
/// be made by name. Every bijector file ends with one; random instances and the dimensions the law
/// suite draws are test fixtures and live with the tests.
[<NoEquality; NoComparison>]
type Entry =
    { Name: string
      /// Rebuilds from saved settings (parameters are then replaced by the saved ones).
      Build: Dtype -> Settings -> Bijector
      /// The bijector as a user creates it (initial parameters), for dimension `dim`.
      Create: Generator -> Dtype -> int -> Bijector
      /// The context width `Create`'s layer reads, if it is conditional.
      ContextDim: int option
      Domain: Domain
      InverseKind: InverseKind
      LogDetKind: LogDetKind
      /// True when `Create` promises the identity map.
      IdentityAtInit: bool }

    /// What a loader needs of this entry.
    member e.Codec : Codec =
        { Name = e.Name
          Build = e.Build
          Domain = e.Domain
          InverseKind = e.InverseKind
          LogDetKind = e.LogDetKind }

/// Marks a module-level `Entry` value for discovery.
[<AttributeUsage(AttributeTargets.Property)>]
type CatalogueEntryAttribute() =
    inherit Attribute()

/// Entry presets, and the perturbation that moves a bijector away from its initial state.
[<RequireQualifiedAccess>]
module Entry =

    /// Adds N(0, scale²) noise to every parameter, moving a bijector away from its initial state
    /// (where many layers are the identity, and a law would hold trivially).
    let perturb (gen: Generator) (scale: float) (b: Bijector) =
        { b with Params = b.Params.Map(fun t -> t + gen.normal(t.shape, 0.0, scale, t.dtype)) }

    /// An entry for a real-domain, exactly invertible, unconditional bijector with exact log-det.
    let exact (name: string) (build: Dtype -> Settings -> Bijector) (create: Generator -> Dtype -> int -> Bijector) : Entry =
        { Name = name
          Build = build
          Create = create
          ContextDim = None
          Domain = Domain.Real
          InverseKind = InverseKind.Exact
          LogDetKind = LogDetKind.Exact
          IdentityAtInit = false }

/// Every bijector that can be rebuilt by name: the library's, discovered from the
/// `[<CatalogueEntry>]` values of this assembly, and those other assemblies register.
[<RequireQualifiedAccess>]
module Catalogue =

    /// The library's entries, sorted by name.
    let all : Entry list =
        typeof<CatalogueEntryAttribute>.Assembly.GetTypes()
        |> Seq.collect (fun t -> t.GetProperties(BindingFlags.Public ||| BindingFlags.Static))
        |> Seq.filter (fun p -> p.IsDefined(typeof<CatalogueEntryAttribute>))
        |> Seq.map (fun p -> p.GetValue null :?> Entry)
        |> Seq.sortBy (fun e -> e.Name)
        |> List.ofSeq

    // codecs registered by other assemblies; a loader may run on any thread
    let private registered = Collections.Concurrent.ConcurrentDictionary<string, Codec>(StringComparer.Ordinal)

    /// The entry called `name`, if there is one. Every bijector is named after the entry that
    /// rebuilds it (the law suite checks this), so a layer's name finds its entry.
    let tryFind (name: string) = all |> List.tryFind (fun e -> e.Name = name)

    /// Every codec, the library's and the registered ones, sorted by name.
    let codecs () : Codec list =
        (all |> List.map (fun e -> e.Codec)) @ List.ofSeq registered.Values |> List.sortBy (fun c -> c.Name)

    let private names () = String.Join(", ", codecs () |> List.map (fun c -> c.Name))

    /// Makes bijectors named `codec.Name` saveable and loadable like the library's. Registering a
    /// name again replaces its codec (a re-run script registers twice); a library name is refused.
    let register (codec: Codec) =
        Guard.that (nameof codec) (not (String.IsNullOrWhiteSpace codec.Name)) "a codec needs a name"
        Guard.that (nameof codec) (tryFind codec.Name).IsNone $"'{codec.Name}' is the name of a library bijector; register under another name"
        registered[codec.Name] <- codec

    /// The codec called `name`, if one is known.
    let tryFindCodec (name: string) : Codec option =
        match tryFind name with
        | Some e -> Some e.Codec
        | None ->
            match registered.TryGetValue name with
            | true, codec -> Some codec
            | _ -> None

    /// The entry called `name`, or an error listing the names there are.
    let find (name: string) =
        match tryFind name with
        | Some e -> e
        | None -> invalidArg (nameof name) $"no bijector '{name}' in the catalogue; have: {names ()}"

    /// The codec called `name`, or an error listing the names there are.
    let findCodec (name: string) =
        match tryFindCodec name with
        | Some c -> c
        | None -> invalidArg (nameof name) $"no bijector '{name}' in the catalogue; have: {names ()}"

    /// A bijector rebuilt from its name and settings through the codec of that name, inverted when
    /// the settings say so and Build did not (a generic `Bijector.invert` of any bijector).
    let rebuild (dtype: Dtype) (name: string) (settings: Settings) =
        let built = (findCodec name).Build dtype settings
        if settings.ContainsKey "inverted" && not (built.Settings.ContainsKey "inverted") then { Bijector.invert built with Name = name }
        else built
