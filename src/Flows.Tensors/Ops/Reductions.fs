namespace Flows.Tensors

/// Reductions built from the primitives, with the numerically careful forms flows need.
[<AutoOpen>]
module Reductions =

    type Tensor with
        /// Mean of all elements.
        member a.mean() = a.sum() / float a.numel
        /// Mean along `dim`.
        member a.mean(dim: int, ?keepDim: bool) =
            let d = Shape.dim "mean" a.dim dim
            a.sum(d, defaultArg keepDim false) / float a.shape[d]
        /// Variance along `dim` (unbiased unless told otherwise).
        member a.var(dim: int, ?keepDim: bool, ?unbiased: bool) =
            let d = Shape.dim "var" a.dim dim
            let n = a.shape[d]
            let centred = a - a.mean(d, true)
            let denominator = if defaultArg unbiased true then float (n - 1) else float n
            centred.square().sum(d, defaultArg keepDim false) / denominator
        /// Standard deviation along `dim`.
        member a.std(dim: int, ?keepDim: bool, ?unbiased: bool) =
            a.var(dim, defaultArg keepDim false, defaultArg unbiased true).sqrt()
        /// log Σ exp along `dim`, shifted by the detached maximum of each slice along `dim`
        /// (not the global maximum, which underflows rows far below it).
        member a.logsumexp(dim: int, ?keepDim: bool) =
            let d = Shape.dim "logsumexp" a.dim dim
            let m = a.max(d, true).noDiff()
            let safe = Tensor.where(m.isinf(), m.zerosLike(), m)
            let r = (a - safe).exp().sum(d, true).log() + safe
            if defaultArg keepDim false then r else r.squeeze d
        /// Softmax along `dim` with the per-slice maximum subtracted.
        member a.softmax(dim: int) =
            let d = Shape.dim "softmax" a.dim dim
            let e = (a - a.max(d, true).noDiff()).exp()
            e / e.sum(d, true)
        /// Log-softmax along `dim`.
        member a.logsoftmax(dim: int) = a - a.logsumexp(dim, true)
        /// log σ(x) = −softplus(−x), stable for large |x|.
        member a.logsigmoid() = -((-a).softplus())
        /// The inverse of softplus, y + log(−expm1(−y)), stable for small and large y > 0.
        member a.softplusInverse() = a + (-((-a).expm1())).log()
        /// Euclidean norm along `dim`.
        member a.norm(dim: int, ?keepDim: bool) = a.square().sum(dim, defaultArg keepDim false).sqrt()
        /// Euclidean norm of all elements.
        member a.norm() = a.square().sum().sqrt()
        /// Dot product of two vectors.
        member a.dot(b: Tensor) = (a * b).sum()
        /// Outer product of two vectors.
        member a.outer(b: Tensor) = a.unsqueeze(1) * b.unsqueeze(0)
        /// The diagonal of the last two dimensions.
        member a.diagonal() =
            let n = min a.shape[a.dim - 2] a.shape[a.dim - 1]
            let eye = Tensor.eye(n, a.dtype, a.device)
            (a.narrow(-2, 0, n).narrow(-1, 0, n) * eye).sum(-1)
        /// Square matrices with this last dimension on the diagonal.
        member a.diagEmbed() =
            let n = a.shape[a.dim - 1]
            a.unsqueeze(-1) * Tensor.eye(n, a.dtype, a.device)
        /// Sum of the diagonal of the last two dimensions.
        member a.trace() = a.diagonal().sum(-1)
        /// x·Wᵀ + b, the layer of an MLP (weight [out; in], bias [out]); x is [..., in] or a vector [in].
        static member linear(x: Tensor, weight: Tensor, ?bias: Tensor) =
            let y =
                if x.dim = 1 then Tensor.MatMulT(x.unsqueeze 0, weight, false, true).squeeze 0
                else Tensor.MatMulT(x, weight, false, true)
            match bias with
            | Some b -> y + b
            | None -> y

    /// `a.logsumexp(dim)` as a module function, for callers (C#) that cannot see F# extension members.
    let logSumExp (dim: int) (a: Tensor) = a.logsumexp dim
