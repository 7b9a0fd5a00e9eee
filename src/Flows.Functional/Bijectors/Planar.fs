/// Planar flow (Rezende & Mohamed 2015): y = x + û·tanh(wᵀx + b), forward base → data.
/// log|det J| = log|1 + tanh'(wᵀx + b)·ûᵀw|. Invertibility needs ûᵀw ≥ −1: û = u + (m(wᵀu) − wᵀu)·w/‖w‖²
/// with m(a) = −1 + softplus(a), so ûᵀw = m(wᵀu) > −1 for any stored u, w.
/// Inverse: α = wᵀx solves wᵀy = α + ûᵀw·tanh(α + b), a monotone 1-D equation, by bisection and a
/// differentiable Newton step; then x = y − û·tanh(α + b).
module Flows.Bijectors.Planar

open Flows
open Flows.Tensors

/// Tolerance of the inverse's root find on α.
let tolerance = 1e-10

/// û = u + (m(wᵀu) − wᵀu)·w/‖w‖² for stored u, w: one layer's [D] or one per row [n; D].
let constrain (u: Tensor) (w: Tensor) =
    let wu = (w * u).sum(-1, true)
    let m = wu.softplus() - 1.0
    u + (m - wu) * w / (w.square().sum(-1, true) + 1e-12)

/// y = x + û·tanh(wᵀx + b) and its log-det, for rows x [n; D]: û, w shared [D] and b a scalar, or
/// each row's own (û, w [n; D], b [n]: the amortised layer).
let forwardWith (uHat: Tensor) (w: Tensor) (b: Tensor) (x: Tensor) =
    let h = ((x * w).sum(-1) + b).tanh()
    let y = x + h.unsqueeze(1) * uHat
    let psi = (1.0 - h.square()) * (w * uHat).sum(-1)
    y, (psi + 1.0).abs().log()

/// Undoes `forwardWith` (same shapes), with the inverse's log-det.
let inverseWith (uHat: Tensor) (w: Tensor) (b: Tensor) (y: Tensor) =
    let wu = (w * uHat).sum(-1)
    let target = (y * w).sum(-1)
    let f (alpha: Tensor) = alpha + (alpha + b).tanh() * wu
    let f' (alpha: Tensor) = (1.0 - (alpha + b).tanh().square()) * wu + 1.0
    let spread = wu.abs().noDiff() + 1.0
    let root = RootFind.bisect f target (target - spread) (target + spread) tolerance
    let alpha = RootFind.newtonStep f f' target root
    let h = (alpha + b).tanh()
    let x = y - h.unsqueeze(1) * uHat
    x, -(((1.0 - h.square()) * wu + 1.0).abs().log())

let private forward (p: Params) (_: Context) (x: Tensor) = forwardWith (constrain p["u"] p["w"]) p["w"] p["b"] x

let private inverse (p: Params) (_: Context) (y: Tensor) = inverseWith (constrain p["u"] p["w"]) p["w"] p["b"] y

/// A planar layer with small random parameters (N(0, 0.01²), as in Rezende & Mohamed 2015's experiments).
let create (gen: Generator) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    Bijector.create "planar" (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
        (Params.ofList
            [ "u", gen.normal([| dim |], 0.0, 0.01, dtype)
              "w", gen.normal([| dim |], 0.0, 0.01, dtype)
              "b", gen.normal([||], 0.0, 0.01, dtype) ])
        forward inverse

[<CatalogueEntry>]
let entry =
    { Entry.exact "planar" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s)) create with
        InverseKind = InverseKind.Iterative tolerance }
