/// Three element-wise transformers of a user's own, each in the library's generic coupling and
/// masked-autoregressive layers, registered so that they save and load, and checked by the public
/// law suite: y = softplus(a)·x + t, and two deliberately wrong copies of it (a log-derivative off
/// by a constant; an "inverse" that is not the inverse). Compiled into tests/Properties too.
module CustomTransformer.Transformers

open Flows
open Flows.Bijectors
open Flows.Laws
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

// the shift t and the scale softplus(a) > 0 of each feature, from its two raw parameters
let private parts (raw: Tensor) = raw.narrow(-1, 0, 1).squeeze(-1), raw.narrow(-1, 1, 1).squeeze(-1).softplus()

/// y = softplus(a)·x + t, log dy/dx = log softplus(a); x = (y − t)/softplus(a).
let softplusScale =
    Transformer.stateless "softplus-scale" 2
        (fun x raw -> let t, a = parts raw in x * a + t, a.log())
        (fun y raw -> let t, a = parts raw in (y - t) / a, -(a.log()))

/// The same map with its log-derivative off by 0.1 both ways.
let offByConstant =
    Transformer.stateless "log-det-off" 2
        (fun x raw -> let t, a = parts raw in x * a + t, a.log() + 0.1)
        (fun y raw -> let t, a = parts raw in (y - t) / a, -(a.log()) - 0.1)

/// The same forward map with an "inverse" that forgets the shift.
let notInverse =
    Transformer.stateless "not-inverse" 2
        (fun x raw -> let t, a = parts raw in x * a + t, a.log())
        (fun y raw -> let _, a = parts raw in y / a, -(a.log()))

// tanh conditioners keep the raw parameters, so the scale, bounded at extreme inputs (a law checks
// them): a ReLU network's grow with the input until softplus(a)·x overflows float32

/// The generic coupling layer over `t` on `dim` features (`dim` ≥ 2).
let coupling (t: Transformer) (gen: Generator) (dtype: Dtype) (dim: int) =
    Coupling.layer gen dtype $"{t.Name}-coupling" []
        { Dim = dim; Mask = Coupling.Mask.Half false; Conditioner = Conditioner.Mlp([ 16; 16 ], Activation.Tanh)
          Transformer = t; Layout = Coupling.Layout.ByFeature; ContextDim = 0 }

/// The generic masked-autoregressive layer over `t` on `dim` features.
let maf (t: Transformer) (gen: Generator) (dtype: Dtype) (dim: int) =
    MaskedAutoregressive.layer gen dtype $"{t.Name}-maf" []
        { Dim = dim; Hidden = [ 16; 16 ]; Order = Order.Natural; Activation = Activation.Tanh; ResidualBlocks = 0
          ContextDim = 0; Transformer = t }

/// Registers a codec for both layers over `t`, so that a model holding them saves and loads.
let register (t: Transformer) =
    for name, make in [ $"{t.Name}-coupling", coupling t; $"{t.Name}-maf", maf t ] do
        Catalogue.register (Codec.exact name (fun dtype settings -> make (Generator 0UL) dtype (Settings.int "dim" settings)))

/// `custom.<layer> passed` or `custom.<layer> failed: <law>, <law>` for both layers over `t`, on 3
/// features, parameters moved away from the identity start.
let verdicts (t: Transformer) =
    register t
    [ for make in [ coupling t; maf t ] do
        let gen = Generator 11UL
        let layer = make gen Dtype.Float64 3 |> Entry.perturb gen 0.5
        let failed = Laws.check (LawOptions.forBijector layer) layer |> List.filter (LawReport.holds >> not)
        if failed.IsEmpty then $"custom.{layer.Name} passed"
        else
            let laws = failed |> List.map (fun r -> Law.name r.Law) |> String.concat ", "
            $"custom.{layer.Name} failed: {laws}" ]
