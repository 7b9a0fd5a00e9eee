/// Radial flow (Rezende & Mohamed 2015): y = x + β·h(r)·(x − x₀), h(r) = 1/(α + r), r = ‖x − x₀‖,
/// forward base → data. α = softplus(α̂) > 0 and β = −α + softplus(β̂) ≥ −α keep it invertible.
/// log|det J| = (d − 1)·log(1 + βh) + log(1 + βh − βr/(α + r)²).
/// Inverse: the radius solves ‖y − x₀‖ = r(1 + β/(α + r)), a quadratic with one positive root.
module Flows.Bijectors.Radial

open Flows
open Flows.Tensors

/// α = softplus(α̂) and β = −α + softplus(β̂) from stored values: one layer's scalars or one per row [n].
let constants (alphaRaw: Tensor) (betaRaw: Tensor) =
    let alpha = alphaRaw.softplus()
    alpha, betaRaw.softplus() - alpha

let private logDet (dim: int) (alpha: Tensor) (beta: Tensor) (r: Tensor) =
    let h = 1.0 / (alpha + r)
    let bh = beta * h
    (bh + 1.0).log() * float (dim - 1) + (bh + 1.0 - beta * r * h.square()).log()

/// y = x + β·(x − x₀)/(α + r) and its log-det, for rows x [n; D]: α, β scalars and x₀ [D], or each
/// row's own (α, β [n], x₀ [n; D]: the amortised layer).
let forwardWith (alpha: Tensor) (beta: Tensor) (centre: Tensor) (x: Tensor) =
    let d = x - centre
    let r = d.norm(1)
    x + d * (beta / (alpha + r)).unsqueeze 1, logDet x.shape[1] alpha beta r

/// Undoes `forwardWith` (same shapes), with the inverse's log-det.
let inverseWith (alpha: Tensor) (beta: Tensor) (centre: Tensor) (y: Tensor) =
    let dy = y - centre
    let ry = dy.norm(1)
    // r² + (α + β − r_y)·r − r_y·α = 0, positive root
    let c = alpha + beta - ry
    let r = ((c.square() + ry * alpha * 4.0).sqrt() - c) * 0.5
    let x = centre + dy / (beta / (alpha + r) + 1.0).unsqueeze 1
    x, -(logDet y.shape[1] alpha beta r)

let private forward (p: Params) (_: Context) (x: Tensor) =
    let alpha, beta = constants p["alphaRaw"] p["betaRaw"]
    forwardWith alpha beta p["centre"] x

let private inverse (p: Params) (_: Context) (y: Tensor) =
    let alpha, beta = constants p["alphaRaw"] p["betaRaw"]
    inverseWith alpha beta p["centre"] y

/// A radial layer with a random centre and small α̂, β̂.
let create (gen: Generator) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    Bijector.create "radial" (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
        (Params.ofList
            [ "centre", gen.normal([| dim |], dtype = dtype)
              "alphaRaw", gen.normal([||], 0.0, 0.01, dtype)
              "betaRaw", gen.normal([||], 0.0, 0.01, dtype) ])
        forward inverse

[<CatalogueEntry>]
let entry =
    Entry.exact "radial" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s)) create
