namespace Flows

open Flows.Tensors

/// Element-wise root finding for the iterative inverses (planar, Sylvester, bisection inverses).
[<RequireQualifiedAccess>]
module RootFind =

    /// Solves f(x) = target element-wise for an increasing f, by bisection inside [low, high],
    /// until every bracket is narrower than `tolerance` (or than a few ulps of its ends, the most
    /// the dtype can resolve). Works on constants: differentiate the answer with `newtonStep`,
    /// which restores the implicit-function gradient.
    let bisect (f: Tensor -> Tensor) (target: Tensor) (low: Tensor) (high: Tensor) (tolerance: float) =
        let target = target.noDiff()
        let mutable lo = low.noDiff()
        let mutable hi = high.noDiff()
        let ulps = if target.dtype = Dtype.Float32 then 4.0 * 1.2e-7 else 4.0 * 2.3e-16
        let width () = ((hi - lo) - (lo.abs().max(hi.abs()) * ulps)).max().toScalar()
        let mutable iterations = 0
        while width () > tolerance && iterations < 200 do
            let mid = (lo + hi) * 0.5
            let below = (f mid).lt target
            lo <- Tensor.where(below, mid, lo)
            hi <- Tensor.where(below, hi, mid)
            iterations <- iterations + 1
        if width () > tolerance then
            invalidOp $"bisection did not reach tolerance {tolerance} in {iterations} iterations"
        (lo + hi) * 0.5

    /// One Newton step x − (f(x) − target) / f'(x) from a root found on constants. Its value is the
    /// root (to second order) and its derivative with respect to the parameters inside `f` and
    /// `target` is the implicit-function one, so iterative inverses stay differentiable.
    let newtonStep (f: Tensor -> Tensor) (derivative: Tensor -> Tensor) (target: Tensor) (root: Tensor) =
        let x = root.noDiff()
        x - (f x - target) / (derivative x).noDiff()
