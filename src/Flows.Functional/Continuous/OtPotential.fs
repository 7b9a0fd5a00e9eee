namespace Flows.Continuous

open Flows
open Flows.Nn
open Flows.Tensors

/// OT-Flow's potential (Onken et al. 2021, "OT-Flow: Fast and Accurate Continuous Normalizing Flows
/// via Optimal Transport") on s = (x, t) ∈ R^{D+1}:
///   Φ(s) = wᵀN(s) + ½ sᵀ(AᵀA)s + bᵀs   (the paper's constant c moves no trajectory and is left out),
/// N a ResNet u₀ = σ(K₀s + b₀), u_i = u_{i−1} + h·σ(K_i u_{i−1} + b_i) (i = 1…M−1, h = 1/(M−1)),
/// σ(x) = log(eˣ + e⁻ˣ) so σ' = tanh, σ'' = 1 − tanh², and A of rank r ≤ D + 1. The gradient and the
/// trace of the x-Hessian are computed in closed form from one forward and one backward sweep
/// (the paper's §3.2), with no VJP per dimension: that is what makes OT-Flow's exact trace cheap.
/// A conditional potential Φ(x, t, c) reads s = (x, t, c): K₀, A and b gain C columns, and since
/// the x-Hessian's trace uses only K₀'s and A's x-columns, the closed forms hold unchanged.
[<RequireQualifiedAccess>]
module OtPotential =

    /// Parameters for x of dimension `dim` and contexts of `contextDim` (0: none), with s of size
    /// n = dim + 1 + contextDim: "w" (ones), "layer.i.weight"/"layer.i.bias" for the `layers` ResNet
    /// layers of `width` (PyTorch's nn.Linear start), "a" [rank; n] (Xavier uniform), "b" [n] (zeros).
    let createConditional (contextDim: int) (gen: Generator) (dtype: Dtype) (dim: int) (width: int) (layers: int) (rank: int) : Params =
        Guard.positive (nameof dim) dim
        Guard.positive (nameof width) width
        Guard.that (nameof contextDim) (contextDim >= 0) $"the context size must be at least 0, got {contextDim}"
        Guard.that (nameof layers) (layers >= 2) $"OT-Flow's ResNet needs at least 2 layers (an opening layer and a residual block), got {layers}"
        Guard.that (nameof rank) (rank >= 1 && rank <= dim + 1) $"must be in [1, dim + 1 = {dim + 1}], got {rank}"
        let inputs = dim + 1 + contextDim
        let bound = sqrt (6.0 / float (rank + inputs))
        Params.concat
            [ yield Params.ofList [ "w", Tensor.ones([| width |], dtype) ]
              for i in 0 .. layers - 1 do
                  yield (Mlp.linear gen dtype (if i = 0 then inputs else width) width false).Prefixed $"layer.{i}"
              yield Params.ofList [ "a", gen.uniform([| rank; inputs |], -bound, bound, dtype); "b", Tensor.zeros([| inputs |], dtype) ] ]

    /// `createConditional` without a context: s = (x, t).
    let create (gen: Generator) (dtype: Dtype) (dim: int) (width: int) (layers: int) (rank: int) : Params =
        createConditional 0 gen dtype dim width layers rank

    let private layerCount (p: Params) =
        let mutable n = 0
        while p.Contains $"layer.{n}.weight" do n <- n + 1
        n

    // log(eˣ + e⁻ˣ) = x + softplus(−2x), without overflow for large |x|
    let private sigma (x: Tensor) = x + (x * -2.0).softplus()

    let private sech2 (x: Tensor) = 1.0 - x.tanh().square()

    // s = [x; t] or [x; t; c] with t broadcast to every row
    let private inputs (c: Tensor option) (t: Tensor) (x: Tensor) =
        if x.dim <> 2 then invalidArg (nameof x) $"OtPotential: expected rows [batch; dim], got {Shape.show x.shape}"
        let time = t.reshape([| 1; 1 |]).expand([| x.shape[0]; 1 |])
        Tensor.cat((match c with Some c -> [| x; time; c |] | None -> [| x; time |]), 1)

    let private weight (p: Params) (i: int) = p[$"layer.{i}.weight"]

    let private bias (p: Params) (i: int) = p[$"layer.{i}.bias"]

    /// Φ(x, t, c) per row ([B]) for rows x [B; D] at time t (rank 0) with their contexts c [B; C]
    /// (None for an unconditional potential), by plain tensor ops.
    let conditionalValue (c: Tensor option) (p: Params) (t: Tensor) (x: Tensor) =
        let s = inputs c t x
        let n = layerCount p
        let h = 1.0 / float (n - 1)
        let mutable u = sigma (Tensor.linear(s, weight p 0, bias p 0))
        for i in 1 .. n - 1 do
            u <- u + sigma (Tensor.linear(u, weight p i, bias p i)) * h
        u.matmul(p["w"]) + s.matmul(p["a"].transpose()).square().sum(1) * 0.5 + s.matmul(p["b"])

    /// Φ(x, t) per row ([B]) for rows x [B; D] at time t (rank 0), by plain tensor ops.
    let value (p: Params) (t: Tensor) (x: Tensor) = conditionalValue None p t x

    /// ∇_sΦ [B; D + 1 (+ C)] (column D is ∂Φ/∂t) and tr(∇²_xΦ) [B], in closed form. The backward
    /// sweep gives g_i = ∂(wᵀN)/∂u_i; the forward sweep carries the transposed Jacobians
    /// J_iᵀ = (∂u_i/∂x)ᵀ [B; D; m]; then tr = Σ_k (σ''(a₀) ⊙ g₀)_k ‖K₀[k, :D]‖²
    /// + h·Σ_i Σ_k (σ''(a_i) ⊙ g_i)_k ‖(K_i J_{i−1})_k‖² + ‖A[:, :D]‖_F².
    let conditionalGradientAndTrace (c: Tensor option) (p: Params) (t: Tensor) (x: Tensor) : Tensor * Tensor =
        let s = inputs c t x
        let rows, dim = x.shape[0], x.shape[1]
        let n = layerCount p
        let h = 1.0 / float (n - 1)
        // pre-activations a_i; u_{n−1} itself is never needed
        let pre = Array.zeroCreate<Tensor> n
        pre[0] <- Tensor.linear(s, weight p 0, bias p 0)
        let mutable u = sigma pre[0]
        for i in 1 .. n - 1 do
            pre[i] <- Tensor.linear(u, weight p i, bias p i)
            if i < n - 1 then u <- u + sigma pre[i] * h
        let g = Array.zeroCreate<Tensor> n
        g[n - 1] <- p["w"].unsqueeze(0).expand(pre[0].shape)
        for i in n - 1 .. -1 .. 1 do
            g[i - 1] <- g[i] + (pre[i].tanh() * g[i]).matmul(weight p i) * h
        let a = p["a"]
        let gradient = (pre[0].tanh() * g[0]).matmul(weight p 0) + s.matmul(a.transpose()).matmul(a) + p["b"]
        let k0x = (weight p 0).narrow(1, 0, dim)
        let width = k0x.shape[0]
        let mutable trace = (sech2 pre[0] * g[0]).matmul(k0x.square().sum(1))
        let mutable jacobianT = pre[0].tanh().unsqueeze(1) * k0x.transpose().unsqueeze(0)
        for i in 1 .. n - 1 do
            // (K_i J)ᵀ for every row as one [B·D; m] × [m; m] product rather than B small ones
            let kj = jacobianT.reshape([| rows * dim; width |]).matmul((weight p i).transpose()).reshape([| rows; dim; width |])
            trace <- trace + (sech2 pre[i] * g[i] * kj.square().sum(1)).sum(1) * h
            jacobianT <- jacobianT + pre[i].tanh().unsqueeze(1) * kj * h
        gradient, trace + a.narrow(1, 0, dim).square().sum()

    /// `conditionalGradientAndTrace` of an unconditional potential: ∇_sΦ [B; D + 1] and tr(∇²_xΦ).
    let gradientAndTrace (p: Params) (t: Tensor) (x: Tensor) : Tensor * Tensor = conditionalGradientAndTrace None p t x
