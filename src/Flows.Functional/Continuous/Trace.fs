namespace Flows.Continuous

open Flows
open Flows.Tensors

/// The distribution of a Hutchinson probe ε: E[εεᵀ] = I for both.
[<RequireQualifiedAccess>]
type Noise =
    /// ε ~ N(0, I).
    | Gaussian
    /// ε uniform on {−1, 1}ᴰ (lower variance: Var = 2·Σ_{i≠j} J_ij², no diagonal term).
    | Rademacher

/// How a CNF computes the divergence tr(∂f/∂z) of its dynamics.
[<RequireQualifiedAccess>]
type TraceMode =
    /// D VJPs with one-hot cotangents, every row at once: exact, D times the cost of one VJP.
    | Exact
    /// Hutchinson's estimator εᵀ(∂f/∂z)ε with one VJP, for a probe ε [B; D] held fixed over a
    /// solve (FFJORD, Grathwohl et al. 2019): unbiased, E[εᵀJε] = tr J.
    | Hutchinson of noise: Tensor

/// Divergences of row-wise maps f: [B; D] → [B; D] (each row's output depends on that row only),
/// returned with f(z) from the same forward pass. The divergences are differentiable (the VJPs are
/// nested levels), so a solve that integrates them can itself be differentiated.
[<RequireQualifiedAccess>]
module Trace =

    let private checkRows (what: string) (z: Tensor) (y: Tensor) =
        if z.dim <> 2 then invalidArg "z" $"{what}: expected rows [batch; dim], got {Shape.show z.shape}"
        if y.shape <> z.shape then invalidArg "f" $"{what}: the map must keep the shape {Shape.show z.shape}, got {Shape.show y.shape}"

    /// f(z) and the exact per-row divergence Σ_i ∂f_i/∂z_i, shape [B]: one VJP per column i whose
    /// cotangent is e_i in every row (rows do not interact, so each row reads its own column).
    let exact (f: Tensor -> Tensor) (z: Tensor) : Tensor * Tensor =
        let y, pullback = Ad.vjp f z
        checkRows "Trace.exact" z y
        let d = z.shape[1]
        // the one-hot rows e_i of an identity made where y lives (no host copy per evaluation on a GPU)
        let eye = Tensor.eye(d, y.dtype, y.device)
        let diagonal = Array.init d (fun i -> (pullback (eye.narrow(0, i, 1).expand y.shape)).narrow(1, i, 1))
        y, Tensor.cat(diagonal, 1).sum(1)

    /// f(z) and Hutchinson's estimate εᵀ(∂f/∂z)ε per row, shape [B], from one VJP with cotangent ε.
    let hutchinson (noise: Tensor) (f: Tensor -> Tensor) (z: Tensor) : Tensor * Tensor =
        if noise.shape <> z.shape then
            invalidArg (nameof noise) $"Trace.hutchinson: the probe must have the rows' shape {Shape.show z.shape}, got {Shape.show noise.shape}"
        let y, pullback = Ad.vjp f z
        checkRows "Trace.hutchinson" z y
        y, (pullback noise * noise).sum(1)

    /// f(z) and the divergence by the given mode.
    let divergence (mode: TraceMode) (f: Tensor -> Tensor) (z: Tensor) : Tensor * Tensor =
        match mode with
        | TraceMode.Exact -> exact f z
        | TraceMode.Hutchinson noise -> hutchinson noise f z

    /// A probe [B; D] of the given distribution, in the dtype and on the device of `like`.
    let probe (noise: Noise) (gen: Generator) (like: Tensor) : Tensor =
        match noise with
        | Noise.Gaussian -> gen.normal(like.shape, 0.0, 1.0, like.dtype, like.device)
        | Noise.Rademacher -> gen.rademacher(like.shape, like.dtype, like.device)
