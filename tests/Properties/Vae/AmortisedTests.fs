/// Amortised flow posteriors, beyond the law suite: each row's log-det against log|det| of that row's
/// autodiff Jacobian (MathNet LU), for single layers and for a VAE's whole posterior flow under the
/// encoder's features; rows with the same point but different contexts get different maps; O-SNF's Q
/// has orthonormal columns.
module Flows.Properties.Vae.AmortisedTests

open Xunit
open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Bijectors
open Flows.Nn
open Flows.Tensors
open Flows.Vae
open Flows.Laws
open Flows.Properties.Support
open Flows.Properties.Bijectors

let private layers : (string * (Generator -> Bijector)) list =
    [ "planar", fun g -> AmortisedPlanar.create g Dtype.Float64 5 3
      "radial", fun g -> AmortisedRadial.create g Dtype.Float64 5 3
      "sylvester-o", fun g -> AmortisedSylvester.create (AmortisedSylvester.Kind.Orthogonal 3) g Dtype.Float64 5 3
      "sylvester-h", fun g -> AmortisedSylvester.create (AmortisedSylvester.Kind.Householder 2) g Dtype.Float64 5 3
      "sylvester-t", fun g -> AmortisedSylvester.create (AmortisedSylvester.Kind.Triangular true) g Dtype.Float64 5 3 ]

let names : seq<obj[]> = layers |> Seq.map (fun (n, _) -> [| box n |])

let private layer (name: string) (gen: Generator) = (layers |> List.find (fun (n, _) -> n = name) |> snd) gen |> Entry.perturb gen 0.5

[<Theory; MemberData(nameof names)>]
let ``each row's log-det is log|det| of its own autodiff Jacobian, and the context changes it`` (name: string) =
    let gen = Generator 31UL
    let b = layer name gen
    // one point under six different contexts: the maps must differ from row to row
    let x = gen.normal([| 1; 5 |], dtype = Dtype.Float64).expand([| 6; 5 |])
    let ctx = Context.ofCondition (gen.normal([| 6; 3 |], dtype = Dtype.Float64))
    let _, logDet = Bijector.forward ctx x b
    let expected = Reference.logAbsDetJacobian (fun x -> fst (Bijector.forward ctx x b)) x
    Close.arrays $"{name}: per-row log-det" { Abs = 1e-9; Rel = 1e-9 } expected (logDet.toArray64())
    let spread = Array.max expected - Array.min expected
    Assert.True(spread > 1e-3, $"{name}: six contexts gave log-dets within {spread}")

[<Fact>]
let ``a VAE's posterior flow has each data point's log-det equal to log|det| of its Jacobian`` () =
    for posterior in [ "planar-3"; "radial-2"; "sylvester-o-2"; "sylvester-h-2"; "sylvester-t-2"; "iaf-2" ] do
        let spec =
            { Event = [| 6 |]; Latent = 4; Hidden = [ 8 ]; Activation = Activation.Tanh; Architecture = Architecture.Mlp
              Posterior = Posterior.parse 4 posterior; Likelihood = Likelihood.Bernoulli }
        let model = Vae.create (Generator 32UL) Dtype.Float64 spec
        // move the flow away from its near-identity start so the check has something to see
        let model = { model with Flow = model.Flow |> List.map (Entry.perturb (Generator 33UL) 0.3) }
        let x = (Generator 34UL).normal([| 5; 6 |], dtype = Dtype.Float64)
        let _, _, h = Vae.encode x model
        let ctx = Context.ofCondition h
        let z0 = (Generator 35UL).normal([| 5; 4 |], dtype = Dtype.Float64)
        let _, logDet = Compose.forward ctx z0 model.Flow
        let expected = Reference.logAbsDetJacobian (fun z -> fst (Compose.forward ctx z model.Flow)) z0
        Close.arrays $"{posterior}: posterior flow log-det" { Abs = 1e-9; Rel = 1e-9 } expected (logDet.toArray64())

[<Theory>]
[<InlineData(6, 6)>]
[<InlineData(6, 2)>]
[<InlineData(1, 1)>]
let ``O-SNF's Q has orthonormal columns for every row`` (dim: int, columns: int) =
    for dtype, tolerance in [ Dtype.Float64, 1e-12; Dtype.Float32, 2e-6 ] do
        let gen = Generator 36UL
        let b = AmortisedSylvester.create (AmortisedSylvester.Kind.Orthogonal columns) gen dtype dim 3 |> Entry.perturb gen 1.0
        let n = 7
        let q = AmortisedSylvester.orthogonal b (Context.ofCondition (gen.normal([| n; 3 |], dtype = dtype))) (Tensor.zeros([| n; dim |], dtype))
        Close.shape "Q" [| n; dim; columns |] q
        let values = q.toArray64()
        for row in 0 .. n - 1 do
            let m = Matrix<float>.Build.Dense(dim, columns, fun i j -> values[(row * dim + i) * columns + j])
            let error = (m.TransposeThisAndMultiply m - Matrix<float>.Build.DenseIdentity columns).Enumerate() |> Seq.map abs |> Seq.max
            Assert.True(error < tolerance, $"{dtype}, row {row}: |QᵀQ − I| reaches {error}")
            // and the columns are not a fixed basis: they depend on the row's context
            if dim > 1 then Assert.True(m.Enumerate() |> Seq.exists (fun v -> abs v > 1e-3 && abs (abs v - 1.0) > 1e-3))
