/// A chain that a model file can rebuild (nflows' CompositeTransform): layers applied in list order,
///   forward (base → data)  y = f_n(… f_1(x)),   log|det J| = Σ_i log|det J_i|
///   inverse (data → base)  the last layer first, each by its inverse.
/// Unlike `Compose.chain` (whose settings hold only its layer count and which its parent rebuilds),
/// its settings nest each layer's catalogue name ("i") and settings ("i.*"), so its entry rebuilds it
/// alone; with conditional layers it carries their common "contextDim", so a context embedding can
/// wrap it and feed every layer the same embedded context.
module Flows.Bijectors.Chain

open Flows
open Flows.Nn
open Flows.Tensors

// each layer's settings sit under "i." and its name under "i"
let private prefix (i: int) = $"{i}."

/// The context width the layers share: 0 when none takes a context (no positive "contextDim"
/// setting); layers built for different widths are refused.
let contextDim (layers: Bijector list) =
    let widths =
        layers
        |> List.indexed
        |> List.choose (fun (i, b) ->
            match Map.tryFind "contextDim" b.Settings with
            | Some(Setting.Int w) when w > 0 -> Some(i, b.Name, w)
            | _ -> None)
    match widths with
    | [] -> 0
    | (first, firstName, w) :: _ ->
        for i, name, other in widths do
            Guard.that (nameof layers) (other = w) $"chain: layer {i} ('{name}') takes contexts of width {other}, layer {first} ('{firstName}') {w}; a chain's layers share one context"
        w

/// One bijector named "chain" that applies `layers` in order (params and buffers under "i."); every
/// layer must have a catalogue entry and map the same event shape.
let ofLayers (layers: Bijector list) : Bijector =
    Guard.that (nameof layers) (not layers.IsEmpty) "a chain needs at least one layer"
    let event = layers.Head.Event
    layers |> List.iteri (fun i b ->
        Guard.that (nameof layers) (Catalogue.tryFindCodec b.Name).IsSome $"chain: layer {i} ('{b.Name}') has no catalogue entry, so the chain could not be rebuilt"
        Guard.that (nameof layers) (b.Event = event) $"chain: layer {i} ('{b.Name}') maps events {Shape.show b.Event}, layer 0 {Shape.show event}")
    let width = contextDim layers
    let settings =
        [ yield "layers", Setting.Int layers.Length
          if width > 0 then yield "contextDim", Setting.Int width
          for i, b in List.indexed layers do
              yield string i, Setting.Text b.Name
              yield! Map.toList (Settings.nest (prefix i) b.Settings) ]
        |> Settings.ofList
    { Compose.chain "chain" layers with Settings = settings }

/// Rebuilds from saved settings: each layer by its own catalogue entry, then the chain.
let build (dtype: Dtype) (settings: Settings) =
    ofLayers
        [ for i in 0 .. Settings.int "layers" settings - 1 ->
            Catalogue.rebuild dtype (Settings.text (string i) settings) (Settings.within (prefix i) settings) ]

// two conditional couplings (context width 3) around an unconditional elementwise affine layer
let private example (gen: Generator) (dtype: Dtype) (dim: int) =
    let conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh)
    ofLayers
        [ SplineCoupling.create gen dtype
            { Dim = dim; Mask = Coupling.Mask.Half false; Conditioner = conditioner
              Spline = Transformers.SplineKind.RationalQuadratic; Bins = 5; Bound = 3.0; ContextDim = 3 }
          Elementwise.affine dtype dim
          Coupling.create gen dtype
            { Dim = dim; Mask = Coupling.Mask.Half true; Conditioner = conditioner
              ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; Affine = true; ContextDim = 3 } ]

/// The catalogue entry: conditional RQ spline and affine couplings around an elementwise affine.
[<CatalogueEntry>]
let entry =
    { Entry.exact "chain" build example with
        ContextDim = Some 3
        IdentityAtInit = true }
