/// The library's catalogue entries as fixtures: how far to perturb each layer from its initial
/// state, and which dimensions to draw. A new catalogue entry needs a row here; a guard test in
/// the property suite fails until it has one.
module Flows.Fixtures.Library

open Flows
open Flows.Bijectors
open Flows.Tensors

let private upTo8 = [ 1 .. 8 ]

// A random well-conditioned Gaussian stage: diagonal in [0.5, 1.5], off-diagonal N(0, 0.3²).
let private gaussianStage (gen: Generator) (dtype: Dtype) (dim: int) =
    let noise = gen.normal([| dim; dim |], 0.0, 0.3, Dtype.Float64).toArray64()
    let diagonal = gen.uniform([| dim |], 0.5, 1.5, Dtype.Float64).toArray64()
    let mean = gen.normal([| dim |], 0.0, 1.0, Dtype.Float64).toArray64()
    GaussianStage.create dtype mean (Array2D.init dim dim (fun i j -> if i = j then diagonal[i] elif j < i then noise[i * dim + j] else 0.0))

// Xavier's A contracts data → base by up to e^{−T‖AᵀA‖}, which spreads the density past the plane
// law's [−9, 9]² window, so the random OT-Flow shrinks A to a third.
let private otFlow (entry: Entry) =
    entry |> Fixture.withRandom [ 1; 2; 3 ] (fun g t d ->
        let b = entry.Create g t d |> Entry.perturb g 0.3
        { b with Params = b.Params.With [ "a", b.Params["a"] * (1.0 / 3.0) ] })

// a random permutation under the perturbed LU factors, so the laws see a non-trivial P
let private luLinear (entry: Entry) =
    entry |> Fixture.withRandom upTo8 (fun g t d -> LuLinear.create (g.permutation(d).toArrayInt()) t |> Entry.perturb g 0.5)

let private table : Map<string, Entry -> Fixture> =
    Map.ofList
        [ // element-wise and linear
          "exp", Fixture.asCreated upTo8
          "sigmoid", Fixture.asCreated upTo8
          "softplus", Fixture.asCreated upTo8
          "tanh", Fixture.asCreated upTo8
          "leaky-relu", Fixture.asCreated upTo8
          "affine", Fixture.perturbed 0.5 upTo8
          "actnorm", Fixture.perturbed 0.5 upTo8
          "batchnorm", Fixture.perturbed 0.5 upTo8
          "permute", Fixture.asCreated upTo8
          "lu-linear", luLinear
          "gaussian-stage", Fixture.withRandom upTo8 gaussianStage
          // planar, radial, Sylvester and their amortised forms
          "planar", Fixture.perturbed 1.0 upTo8
          "radial", Fixture.perturbed 1.0 upTo8
          "sylvester-householder", Fixture.perturbed 0.7 upTo8
          "sylvester-triangular", Fixture.perturbed 0.7 upTo8
          "amortised-planar", Fixture.perturbed 0.5 upTo8
          "amortised-radial", Fixture.perturbed 0.5 upTo8
          "amortised-sylvester-orthogonal", Fixture.perturbed 0.5 upTo8
          "amortised-sylvester-householder", Fixture.perturbed 0.5 upTo8
          "amortised-sylvester-triangular", Fixture.perturbed 0.5 upTo8
          // couplings and autoregressive layers
          "affine-coupling", Fixture.perturbed 0.3 [ 2 .. 8 ]
          "additive-coupling", Fixture.perturbed 0.3 [ 2 .. 8 ]
          "rq-spline-coupling", Fixture.perturbed 0.3 [ 2 .. 6 ]
          "linear-spline-coupling", Fixture.perturbed 0.3 [ 2 .. 6 ]
          "linear-fixed-spline-coupling", Fixture.perturbed 0.3 [ 2 .. 6 ]
          "quadratic-spline-coupling", Fixture.perturbed 0.3 [ 2 .. 6 ]
          "cubic-spline-coupling", Fixture.perturbed 0.3 [ 2 .. 6 ]
          "maf", Fixture.perturbed 0.3 [ 1 .. 5 ]
          "iaf", Fixture.perturbed 0.3 [ 1 .. 5 ]
          "rq-spline-maf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "linear-spline-maf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "linear-fixed-spline-maf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "quadratic-spline-maf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "cubic-spline-maf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "naf", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "bnaf", Fixture.perturbed 0.3 [ 1 .. 3 ]
          "sos", Fixture.perturbed 0.3 [ 1 .. 4 ]
          "umnn", Fixture.perturbed 0.3 [ 1 .. 3 ]
          "context-embedding", Fixture.perturbed 0.3 [ 2 .. 4 ]
          "chain", Fixture.perturbed 0.3 [ 2 .. 4 ]
          "residual", Fixture.perturbed 1.0 [ 1 .. 3 ]
          // continuous: 0.1 for the time-dependent weights, which swing hard with t at 0.3
          "cnf", Fixture.perturbed 0.3 [ 1; 2; 3 ]
          "cnf-hypernet", Fixture.perturbed 0.1 [ 1; 2; 3 ]
          "cnf-galerkin", Fixture.perturbed 0.1 [ 1; 2; 3 ]
          "ot-flow", otFlow
          // image layers on flat rows: the dimensions are those of the image shapes each entry's
          // layer is made for
          "squeeze", Fixture.asCreated [ 4; 8; 16; 24 ]
          "channel-actnorm", Fixture.perturbed 0.5 [ 4; 8; 12; 18 ]
          "invertible-1x1-conv", Fixture.perturbed 0.5 [ 4; 8; 12; 18 ]
          "channel-coupling", Fixture.perturbed 0.3 [ 8; 12; 18; 16 ]
          "context-prior", Fixture.perturbed 0.3 [ 4; 6; 6 ]
          "factor-out", Fixture.perturbed 0.3 [ 8; 9; 16 ]
          "factor-out-learned-prior", Fixture.perturbed 0.3 [ 8; 9; 16 ]
          "glow", Fixture.perturbed 0.3 [ 16 ] ]

/// The fixture of every library entry that has one, sorted by name.
let all : Fixture list = Catalogue.all |> List.choose (fun e -> table |> Map.tryFind e.Name |> Option.map (fun make -> make e))

/// Library entries without a fixture (the guard test wants none).
let missing : string list = Catalogue.all |> List.filter (fun e -> not (table.ContainsKey e.Name)) |> List.map (fun e -> e.Name)

/// Fixture rows naming no library entry (a renamed or removed layer).
let stale : string list = table |> Map.toList |> List.map fst |> List.filter (fun n -> (Catalogue.tryFind n).IsNone)

/// The fixture of the library entry called `name`.
let find (name: string) =
    match all |> List.tryFind (fun f -> f.Name = name) with
    | Some f -> f
    | None -> invalidArg (nameof name) $"no fixture for '{name}'"
