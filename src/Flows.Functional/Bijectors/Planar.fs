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

let private uHat (p: Params) =
    let u, w = p["u"], p["w"]
    let wu = (w * u).sum()
    let m = wu.softplus() - 1.0
    u + (m - wu) * w / (w.square().sum() + 1e-12)

let private forward (p: Params) (_: Context) (x: Tensor) =
    let w, b, u = p["w"], p["b"], uHat p
    let a = x.matmul(w) + b
    let h = a.tanh()
    let y = x + h.unsqueeze(1) * u
    let psi = (1.0 - h.square()) * (w * u).sum()
    y, (psi + 1.0).abs().log()

let private inverse (p: Params) (_: Context) (y: Tensor) =
    let w, b, u = p["w"], p["b"], uHat p
    let wu = (w * u).sum()
    let target = y.matmul w
    let f (alpha: Tensor) = alpha + (alpha + b).tanh() * wu
    let f' (alpha: Tensor) = (1.0 - (alpha + b).tanh().square()) * wu + 1.0
    let spread = wu.abs().noDiff() + 1.0
    let root = RootFind.bisect f target (target - spread) (target + spread) tolerance
    let alpha = RootFind.newtonStep f f' target root
    let h = (alpha + b).tanh()
    let x = y - h.unsqueeze(1) * u
    x, -(((1.0 - h.square()) * wu + 1.0).abs().log())

/// A planar layer with small random parameters (as in document 000: N(0, 0.01²)).
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
    { Entry.exact "planar" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s)) create
        (fun g t d -> create g t d |> Entry.perturb g 1.0) with
        InverseKind = InverseKind.Iterative tolerance }
