/// A fixed affine map y = L·z + μ, forward base → data, with L lower triangular (positive diagonal):
/// on a standard-normal base it is the Gaussian N(μ, L·Lᵀ). log|det J| = Σ log Lᵢᵢ; the inverse is
/// one triangular solve. L and μ are buffers, not learnt: the default fit sets them to a shrunk
/// full-covariance Gaussian of the training rows; layers before it (trained on rows it whitens) then
/// start from that Gaussian, and the stage alone is the Gaussian floor.
module Flows.Bijectors.GaussianStage

open Flows
open Flows.Tensors

/// The layer's name in model files.
let name = "gaussian-stage"

let private forward (p: Params) (_: Context) (z: Tensor) =
    let l = p["cholesky"]
    z.matmul(l.transpose()) + p["mean"], l.diagonal().log().sum().expand [| z.shape[0] |]

let private inverse (p: Params) (_: Context) (y: Tensor) =
    let l = p["cholesky"]
    let z = l.solveTriangular((y - p["mean"]).transpose(), false).transpose()
    z, (-(l.diagonal().log().sum())).expand [| y.shape[0] |]

/// The stage N(mean, cholesky·choleskyᵀ) in `dtype`.
let create (dtype: Dtype) (mean: float[]) (cholesky: float[,]) =
    let dim = mean.Length
    Guard.that (nameof cholesky) (Array2D.length1 cholesky = dim && Array2D.length2 cholesky = dim) $"expected a {dim}×{dim} factor, got {Array2D.length1 cholesky}×{Array2D.length2 cholesky}"
    for i in 0 .. dim - 1 do
        Guard.that (nameof cholesky) (cholesky[i, i] > 0.0 && System.Double.IsFinite cholesky[i, i]) $"diagonal {i} is {cholesky[i, i]}; it must be finite and above 0"
    let lower = Array2D.init dim dim (fun i j -> if j <= i then cholesky[i, j] else 0.0)
    let b = Bijector.create name (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |] Params.empty forward inverse
    { b with
        Buffers =
            Params.ofList
                [ "cholesky", (Tensor.ofArray2D lower).cast dtype
                  "mean", (Tensor.ofArray mean).cast dtype ] }

/// The identity stage (N(0, I)) of dimension `dim`.
let identity (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    create dtype (Array.zeroCreate dim) (Array2D.init dim dim (fun i j -> if i = j then 1.0 else 0.0))

[<CatalogueEntry>]
let entry =
    { Entry.exact name (fun t s -> identity t (Settings.int "dim" s)) (fun _ t d -> identity t d) with IdentityAtInit = true }
