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

    /// A bracket [low, high] with f(low) ≤ target ≤ f(high) element-wise for an increasing f on the
    /// whole line: both ends start at ∓1 and each end that misses doubles away from 0, at most 64
    /// times (enough for any finite float64 target when f grows at least linearly).
    let expandBracket (f: Tensor -> Tensor) (target: Tensor) =
        let target = target.noDiff()
        let mutable low = target.fullLike -1.0
        let mutable high = target.fullLike 1.0
        let mutable doublings = 0
        let mutable lowMisses = (f low).gt target
        let mutable highMisses = (f high).lt target
        let misses () = (lowMisses.sum() + highMisses.sum()).toScalar() > 0.0
        while misses () && doublings < 64 do
            low <- Tensor.where(lowMisses, low * 2.0, low)
            high <- Tensor.where(highMisses, high * 2.0, high)
            lowMisses <- (f low).gt target
            highMisses <- (f high).lt target
            doublings <- doublings + 1
        if misses () then
            invalidOp $"no bracket [−2^{doublings}, 2^{doublings}] holds the target: is the map increasing and unbounded, the target finite?"
        low, high

    /// One Newton step x − (f(x) − target) / f'(x) from a root found on constants. Its value is the
    /// root (to second order) and its derivative with respect to the parameters inside `f` and
    /// `target` is the implicit-function one, so iterative inverses stay differentiable.
    let newtonStep (f: Tensor -> Tensor) (derivative: Tensor -> Tensor) (target: Tensor) (root: Tensor) =
        let x = root.noDiff()
        x - (f x - target) / (derivative x).noDiff()

    /// x with f(x) = target for an element-wise increasing map given with its log-derivative,
    /// x ↦ (f x, log f'(x)): `bisect` on `constant` (the same map on detached parameters) inside
    /// [low, high], then `newtonStep` on the differentiable `map`. The inverse behind the
    /// autoregressive transformers that have no closed form (NAF, SOS, UMNN).
    let solveIncreasing (constant: Tensor -> Tensor * Tensor) (map: Tensor -> Tensor * Tensor) (target: Tensor) (low: Tensor, high: Tensor) (tolerance: float) =
        let root = bisect (constant >> fst) target low high tolerance
        newtonStep (map >> fst) (fun x -> (snd (map x)).exp()) target root
