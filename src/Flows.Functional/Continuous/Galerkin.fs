namespace Flows.Continuous

open System
open Flows
open Flows.Nn
open Flows.Tensors

/// A basis ψ_0 … ψ_{K−1} of functions of depth t ∈ [0, T] in which Galerkin neural ODEs expand
/// their weights, θ(t) = Σ_k α_k ψ_k(t) (Massaroli et al. 2020, "Dissecting Neural ODEs", §3).
[<RequireQualifiedAccess>]
type GalerkinBasis =
    /// 1, cos(2πk t/T), sin(2πk t/T) for k = 1 … modes: 2·modes + 1 functions.
    | Fourier of modes: int
    /// Chebyshev polynomials T_0 … T_degree of x = 2t/T − 1: degree + 1 functions.
    | Chebyshev of degree: int
    /// Indicators of `pieces` equal intervals of [0, T] (t ≤ 0 in the first, t ≥ T in the last).
    | PiecewiseConstant of pieces: int

/// Evaluation of a Galerkin basis and expansions in it.
[<RequireQualifiedAccess>]
module GalerkinBasis =

    /// The number of basis functions K.
    let size (basis: GalerkinBasis) =
        match basis with
        | GalerkinBasis.Fourier modes -> 2 * modes + 1
        | GalerkinBasis.Chebyshev degree -> degree + 1
        | GalerkinBasis.PiecewiseConstant pieces -> pieces

    /// Fails unless the basis has at least one function.
    let check (basis: GalerkinBasis) =
        match basis with
        | GalerkinBasis.Fourier modes -> Guard.that (nameof basis) (modes >= 0) $"Fourier needs at least 0 modes, got {modes}"
        | GalerkinBasis.Chebyshev degree -> Guard.that (nameof basis) (degree >= 0) $"Chebyshev needs degree at least 0, got {degree}"
        | GalerkinBasis.PiecewiseConstant pieces -> Guard.positive (nameof basis) pieces

    /// ψ_0(t) … ψ_{K−1}(t) on [0, endTime]. Chebyshev values come from the three-term recurrence,
    /// which stays polynomial (finite) for t outside [0, T], where an adaptive step may probe.
    let values (basis: GalerkinBasis) (endTime: float) (t: float) : float[] =
        match basis with
        | GalerkinBasis.Fourier modes ->
            let phase = 2.0 * Math.PI * t / endTime
            Array.init (2 * modes + 1) (fun i ->
                if i = 0 then 1.0
                else
                    let k = float ((i + 1) / 2)
                    if i % 2 = 1 then cos (k * phase) else sin (k * phase))
        | GalerkinBasis.Chebyshev degree ->
            let x = 2.0 * t / endTime - 1.0
            let result = Array.zeroCreate (degree + 1)
            result[0] <- 1.0
            if degree >= 1 then result[1] <- x
            for k in 2 .. degree do
                result[k] <- 2.0 * x * result[k - 1] - result[k - 2]
            result
        | GalerkinBasis.PiecewiseConstant pieces ->
            let piece = int (floor (t / endTime * float pieces)) |> max 0 |> min (pieces - 1)
            Array.init pieces (fun k -> if k = piece then 1.0 else 0.0)

    /// Coefficients c with Σ_k c_k ψ_k(t) = 1 for every t: the expansion of a constant.
    let constant (basis: GalerkinBasis) : float[] =
        match basis with
        | GalerkinBasis.PiecewiseConstant pieces -> Array.create pieces 1.0
        | other -> Array.init (size other) (fun k -> if k = 0 then 1.0 else 0.0)

    // Σ_k α_k ψ_k for ψ as a row [1; K] already in the coefficients' dtype and device.
    let internal expandRow (psi: Tensor) (coefficients: Tensor) =
        let k = psi.shape[1]
        if coefficients.dim < 1 || coefficients.shape[0] <> k then
            invalidArg (nameof coefficients) $"GalerkinBasis.expand: expected [{k}; …] coefficients, got {Shape.show coefficients.shape}"
        psi.matmul(coefficients.reshape [| k; coefficients.numel / k |]).reshape coefficients.shape[1..]

    /// ψ(t) as a row [1; K] of the dtype and device of `like`.
    let row (basis: GalerkinBasis) (endTime: float) (like: Tensor) (t: float) =
        Tensor.ofArray(values basis endTime t, [| 1; size basis |], like.device).cast like.dtype

    /// θ(t) = Σ_k α_k ψ_k(t) for coefficients α [K; shape…], shaped [shape…]; differentiable in α.
    let expand (basis: GalerkinBasis) (endTime: float) (coefficients: Tensor) (t: float) =
        expandRow (row basis endTime coefficients t) coefficients

    /// The basis as saved in settings: "fourier:2", "chebyshev:3", "piecewise:4".
    let name (basis: GalerkinBasis) =
        match basis with
        | GalerkinBasis.Fourier modes -> $"fourier:{modes}"
        | GalerkinBasis.Chebyshev degree -> $"chebyshev:{degree}"
        | GalerkinBasis.PiecewiseConstant pieces -> $"piecewise:{pieces}"

    /// The basis a saved name stands for.
    let parse (text: string) =
        match text.Split ':' with
        | [| "fourier"; n |] -> GalerkinBasis.Fourier(int n)
        | [| "chebyshev"; n |] -> GalerkinBasis.Chebyshev(int n)
        | [| "piecewise"; n |] -> GalerkinBasis.PiecewiseConstant(int n)
        | _ -> invalidArg (nameof text) $"unknown Galerkin basis '{text}'; expected fourier:N, chebyshev:N or piecewise:N"

/// Galerkin neural ODE dynamics (Massaroli et al. 2020, §3): an MLP field
/// f(t, z) = L_n(…tanh(L_1(x))) on x = z or [z; t], whose every weight and bias is θ(t) = Σ_k α_k ψ_k(t)
/// with learnable coefficients α. Compared with a hypernetwork (`Hypernet`), the dependence on depth
/// is linear in the parameters and its spectrum is chosen by the basis.
[<RequireQualifiedAccess>]
module Galerkin =

    /// Parameters "i.weight" [K; out; in] and "i.bias" [K; out] for layers D (+1 with `timeInput`) →
    /// hidden… → D. They start as a depth-independent MLP drawn as PyTorch's nn.Linear does (the
    /// basis's expansion of a constant times one draw), so training starts from a plain neural ODE.
    let create (gen: Generator) (dtype: Dtype) (basis: GalerkinBasis) (dim: int) (hidden: int list) (timeInput: bool) : Params =
        GalerkinBasis.check basis
        Guard.positive (nameof dim) dim
        let k = GalerkinBasis.size basis
        let c = Tensor.ofArray(GalerkinBasis.constant basis, [| k; 1 |]).cast dtype
        let lift (t: Tensor) = (c * t.reshape [| 1; t.numel |]).reshape(Array.append [| k |] t.shape)
        (Mlp.create gen dtype ([ (if timeInput then dim + 1 else dim) ] @ hidden @ [ dim ]) false).Map lift

    /// The depth-independent MLP parameters θ(t) ("i.weight" [out; in], "i.bias" [out]) at time t.
    let at (basis: GalerkinBasis) (endTime: float) (p: Params) (t: float) : Params =
        // ψ(t) once per evaluation, shared by every layer
        let psi = GalerkinBasis.row basis endTime p.Values[0] t
        p.Map(GalerkinBasis.expandRow psi)

    /// f(t, z) for rows z [B; D] at time t (rank 0); the input is [z; t] when the first layer has
    /// D + 1 columns. A `ParameterisedField` once the basis and end time are given. The basis is
    /// evaluated at t's value: solver times are data, so f is not differentiated in t.
    let field (basis: GalerkinBasis) (endTime: float) (p: Params) (t: Tensor) (z: Tensor) =
        let theta = at basis endTime p (t.toScalar())
        let input =
            if theta["0.weight"].shape[1] = z.shape[1] + 1 then
                Tensor.cat([| z; t.reshape([| 1; 1 |]).expand([| z.shape[0]; 1 |]) |], 1)
            else z
        Mlp.apply Activation.Tanh theta input
