/// Invertible linear map with an LU parameterisation (nflows' LULinear; Glow's 1×1 convolution on
/// vectors): y = P·L·U·x + c, forward base → data, with L unit lower triangular, U upper triangular
/// with diagonal softplus(d) + 10⁻³ > 0, P a fixed permutation. log|det J| = Σ log Uᵢᵢ, O(D);
/// the inverse is two triangular solves. Starts as the identity (with P).
module Flows.Bijectors.LuLinear

open Flows
open Flows.Tensors

let private minDiagonal = 1e-3

let private factors (p: Params) =
    let dim = p["diag"].shape[0]
    let eye = Tensor.eye(dim, p["diag"].dtype, p["diag"].device)
    let d = p["diag"].softplus() + minDiagonal
    p["lower"].tril(-1) + eye, p["upper"].triu(1) + d.diagEmbed(), d

let private columns (order: Constant) (x: Tensor) =
    x.gather(1, (order.Like x).unsqueeze(0).expand x.shape)

/// An LU-linear layer with permutation `perm` (the identity permutation for none).
let create (perm: int[]) (dtype: Dtype) =
    let dim = perm.Length
    Guard.that (nameof perm) (dim > 0 && Array.sort perm = Array.init dim id) $"expected a permutation of 0..{dim - 1}"
    let inversePerm = Array.zeroCreate dim
    perm |> Array.iteri (fun i p -> inversePerm[p] <- i)
    let order, inverseOrder = Constant.ofIndices perm, Constant.ofIndices inversePerm
    let forward (p: Params) (_: Context) (x: Tensor) =
        let l, u, d = factors p
        // rows: (P L U x)ᵢ = (L U x)_{perm[i]}
        let y = columns order (x.matmul(u.transpose()).matmul(l.transpose())) + p["bias"]
        y, d.log().sum().expand [| x.shape[0] |]
    let inverse (p: Params) (_: Context) (y: Tensor) =
        let l, u, d = factors p
        let c = columns inverseOrder (y - p["bias"])
        let a = l.solveTriangular(c.transpose(), false, unitDiagonal = true)
        let x = u.solveTriangular(a, true).transpose()
        x, (-(d.log().sum())).expand [| y.shape[0] |]
    let identityDiagonal = Tensor.full([| dim |], 1.0 - minDiagonal, Dtype.Float64).softplusInverse().cast dtype
    Bijector.create "lu-linear" (Settings.ofList [ "perm", Setting.Ints perm ]) [| dim |]
        (Params.ofList
            [ "lower", Tensor.zeros([| dim; dim |], dtype)
              "upper", Tensor.zeros([| dim; dim |], dtype)
              "diag", identityDiagonal
              "bias", Tensor.zeros([| dim |], dtype) ])
        forward inverse

[<CatalogueEntry>]
let entry =
    { Entry.exact "lu-linear" (fun t s -> create (Settings.ints "perm" s) t) (fun _ t d -> create (Array.init d id) t) with
        IdentityAtInit = true }
