/// The generic coupling and masked-autoregressive layers take any element-wise transformer: a user's
/// own, built from the public record, passes every law in both; every library transformer inverts
/// and has the autodiff log-det in a coupling layer too (the catalogue has most only in MAF layers);
/// and the affine coupling and the MAF read their networks' outputs in the layouts of their saved weights.
module Flows.Properties.Bijectors.GenericLayerTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Laws
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A user's transformer: y = softplus(a)·x + t per feature, log dy/dx = log softplus(a) (not the
/// library's affine map, whose scale is exp).
let private softplusScale : Transformer =
    let parts (raw: Tensor) = raw.narrow(-1, 0, 1).squeeze(-1), raw.narrow(-1, 1, 1).squeeze(-1).softplus()
    { Name = "test-softplus-scale"
      ParameterCount = 2
      Params = Params.empty
      Forward = fun _ x raw -> let t, a = parts raw in x * a + t, a.log()
      Inverse = fun _ y raw -> let t, a = parts raw in (y - t) / a, -(a.log())
      InverseKind = InverseKind.Exact
      InitialNoise = 0.0 }

let private coupling (transformer: Transformer) (dtype: Dtype) (dim: int) =
    Coupling.layer (Generator 3UL) dtype $"{transformer.Name}-coupling" []
        { Dim = dim; Mask = Coupling.Mask.Alternating false; Conditioner = Conditioner.Mlp([ 8 ], Activation.Tanh); Transformer = transformer
          Layout = Coupling.Layout.ByFeature; ContextDim = 0 }

let private autoregressive (transformer: Transformer) (dtype: Dtype) (dim: int) =
    MaskedAutoregressive.layer (Generator 3UL) dtype $"{transformer.Name}-maf" []
        { Dim = dim; Hidden = [ 8 ]; Order = Order.Random 4; Activation = Activation.Tanh; ResidualBlocks = 0; ContextDim = 0
          Transformer = transformer }

let layers : seq<obj[]> = [ "coupling"; "maf" ] |> Seq.collect (fun layer -> [ 2; 3 ] |> Seq.map (fun dim -> [| box layer; box dim |]))

[<Theory; MemberData(nameof layers)>]
let ``a user's transformer in the generic layer passes every law`` (layer: string) (dim: int) =
    let build = if layer = "coupling" then coupling softplusScale else autoregressive softplusScale
    let name = (build Dtype.Float64 dim).Name
    Catalogue.register (Codec.exact name (fun dtype settings -> build dtype (Settings.int "dim" settings)))
    let b = build Dtype.Float64 dim |> Entry.perturb (Generator(uint64 dim)) 0.5
    let reports = Laws.check (LawOptions.forBijector b) b
    Assert.Equal<Law list>(Law.all, reports |> List.map _.Law)
    LawReport.assertAll b.Name reports
    let notApplicable = if dim = 2 then [ Law.DomainErrors ] else [ Law.DomainErrors; Law.Normalisation ]
    Assert.Equal<Law list>(notApplicable, reports |> List.filter (fun r -> r.Verdict = Verdict.NotApplicable) |> List.map _.Law)

/// Every library transformer by name, built for `dtype`.
let private libraryTransformer (name: string) (dtype: Dtype) =
    match name with
    | "affine" -> Affine.transformer (Coupling.logScale (Coupling.ScaleMap.SoftClamp 2.0))
    | "additive" -> Affine.additive
    | "sigmoid" -> Dsf.transformer 4
    | "sos" -> Polynomial.transformer 3 2 4.0 1e-3
    | "umnn" -> Integrand.transformer (Generator 8UL) dtype 2 [ 8 ] Activation.Tanh Quadrature.ClenshawCurtis 24
    | spline -> SplineKind.transformer 5 3.0 (SplineKind.parse spline)

let transformers : seq<obj[]> =
    [ "affine"; "additive"; "sigmoid"; "sos"; "umnn" ] @ List.map SplineKind.name SplineKind.all |> Seq.map (fun n -> [| box n |])

[<Theory; MemberData(nameof transformers)>]
let ``every library transformer in a coupling layer inverts both ways with the autodiff log-det`` (name: string) =
    let t = libraryTransformer name Dtype.Float64
    // the quadrature's own Jacobian agrees with UMNN's exact log-derivative to its error only
    let logDet = if name = "umnn" then LogDetKind.Approximate 1e-3 else LogDetKind.Exact
    let options =
        { LawOptions.forKinds t.InverseKind logDet LawOptions.defaults with
            Laws = [ Law.InverseUndoesForward; Law.ForwardUndoesInverse; Law.ForwardLogDet; Law.InverseLogDet; Law.LogDetsCancel ]
            Cases = 3 }
    let b = coupling t Dtype.Float64 3 |> Entry.perturb (Generator 5UL) 0.3
    let reports = Laws.check options b
    LawReport.assertAll b.Name reports
    Assert.All(reports, fun r -> Assert.Equal(Verdict.Holds, r.Verdict))

let private close (what: string) (expected: Tensor) (actual: Tensor) =
    let e, a = expected.toArray64(), actual.toArray64()
    Assert.Equal(e.Length, a.Length)
    Array.iteri2 (fun i (u: float) v -> if abs (u - v) > 1e-12 * (1.0 + abs u) then failwith $"{what}[{i}]: expected {u}, got {v}") e a

[<Fact>]
let ``the affine coupling reads every shift, then every log-scale from its network, as its saved weights do`` () =
    let g = Generator 11UL
    let conditioner = Conditioner.Mlp([ 8 ], Activation.Tanh)
    let b =
        Coupling.create g Dtype.Float64
            { Dim = 5; Mask = Coupling.Mask.Half false; Conditioner = conditioner; ScaleMap = Coupling.ScaleMap.SoftClamp 2.0; Affine = true; ContextDim = 0 }
        |> Entry.perturb g 0.5
    let x = g.normal([| 6; 5 |], dtype = Dtype.Float64)
    // A = features 0–1, B = 2–4; the network's 6 outputs are 3 shifts, then 3 raw log-scales
    let h = Conditioner.apply conditioner (b.Params.Scope "net") (x.narrow(1, 0, 2))
    let logScale = (h.narrow(1, 3, 3) / 2.0).atan() * (4.0 / Math.PI)
    let y, logDet = Bijector.forward Context.none x b
    close "y_A" (x.narrow(1, 0, 2)) (y.narrow(1, 0, 2))
    close "y_B" (x.narrow(1, 2, 3) * logScale.exp() + h.narrow(1, 0, 3)) (y.narrow(1, 2, 3))
    close "log-det" (logScale.sum(1)) logDet

[<Fact>]
let ``the MAF reads feature d's shift and log-scale from MADE outputs 2d and 2d + 1, as its saved weights do`` () =
    let g = Generator 12UL
    let b = Autoregressive.maf g Dtype.Float64 3 [ 8 ] (Order.Random 2) |> Entry.perturb g 0.5
    let made, _ = Made.create (Generator 0UL) Dtype.Float64 (Made.ofSettings b.Settings)
    let x = g.normal([| 6; 3 |], dtype = Dtype.Float64)
    let h = Made.apply made (b.Params.Scope "made") None x
    let column (j: int) = Tensor.stack([| for d in 0 .. 2 -> h.narrow(1, 2 * d + j, 1).squeeze 1 |], 1)
    let logScale = (column 1 / 3.0).atan() * (6.0 / Math.PI)
    let z, logDet = Bijector.inverse Context.none x b
    close "z" ((x - column 0) * (-logScale).exp()) z
    close "log-det" (-(logScale.sum(1))) logDet
