namespace Flows.Continuous

open Flows
open Flows.Nn
open Flows.Tensors

/// Time-dependent dynamics whose layer weights are a function of t (the "hypernetwork" CNF of Chen
/// et al. 2018, §4, and torchdiffeq's cnf example): a small MLP of t outputs W, U [width; D], a gate
/// G and a bias B [width], and f(t, z) = (1/width)·Σ_k σ(G_k)·U_k·tanh(W_k·z + B_k). Compared with
/// t concatenated to the input (`Cnf.dynamics`), every weight, not one input column, moves with t.
[<RequireQualifiedAccess>]
module Hypernet =

    /// Parameters "net.*": the MLP 1 → hidden… → width·(2D + 2), tanh between layers.
    let create (gen: Generator) (dtype: Dtype) (dim: int) (width: int) (hidden: int list) : Params =
        Guard.positive (nameof dim) dim
        Guard.positive (nameof width) width
        (Mlp.create gen dtype ([ 1 ] @ hidden @ [ width * (2 * dim + 2) ]) false).Prefixed "net"

    /// The number of hidden units of the dynamics layer, read from the parameters for rows of `dim`.
    let width (dim: int) (p: Params) =
        let net = p.Scope "net"
        net[$"{Mlp.depth net - 1}.bias"].shape[0] / (2 * dim + 2)

    /// f(t, z) for rows z [B; D] at time t (rank 0).
    let field (p: Params) (t: Tensor) (z: Tensor) =
        let dim = z.shape[1]
        let width = width dim p
        let weights = Mlp.apply Activation.Tanh (p.Scope "net") (t.reshape [| 1; 1 |])
        let block (index: int) (length: int) = weights.narrow(1, index * width * dim, length)
        let w = (block 0 (width * dim)).reshape [| width; dim |]
        let u = (block 1 (width * dim)).reshape [| width; dim |]
        let gate = (block 2 width).reshape [| width; 1 |]
        let bias = weights.narrow(1, 2 * width * dim + width, width)
        (z.matmul(w.transpose()) + bias).tanh().matmul(u * gate.sigmoid()) / float width
