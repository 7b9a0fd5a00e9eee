/// Radial flow (Rezende & Mohamed 2015): y = x + β·h(r)·(x − x₀), h(r) = 1/(α + r), r = ‖x − x₀‖,
/// forward base → data. α = softplus(α̂) > 0 and β = −α + softplus(β̂) ≥ −α keep it invertible.
/// log|det J| = (d − 1)·log(1 + βh) + log(1 + βh − βr/(α + r)²).
/// Inverse: the radius solves ‖y − x₀‖ = r(1 + β/(α + r)), a quadratic with one positive root.
module Flows.Bijectors.Radial

open Flows
open Flows.Tensors

let private constants (p: Params) =
    let alpha = p["alphaRaw"].softplus()
    alpha, p["betaRaw"].softplus() - alpha, p["centre"]

let private logDet (dim: int) (alpha: Tensor) (beta: Tensor) (r: Tensor) =
    let h = 1.0 / (alpha + r)
    let bh = beta * h
    (bh + 1.0).log() * float (dim - 1) + (bh + 1.0 - beta * r * h.square()).log()

let private forward (dim: int) (p: Params) (_: Context) (x: Tensor) =
    let alpha, beta, centre = constants p
    let d = x - centre
    let r = d.norm(1)
    x + d * (beta / (alpha + r)).unsqueeze 1, logDet dim alpha beta r

let private inverse (dim: int) (p: Params) (_: Context) (y: Tensor) =
    let alpha, beta, centre = constants p
    let dy = y - centre
    let ry = dy.norm(1)
    // r² + (α + β − r_y)·r − r_y·α = 0, positive root
    let c = alpha + beta - ry
    let r = ((c.square() + ry * alpha * 4.0).sqrt() - c) * 0.5
    let x = centre + dy / (beta / (alpha + r) + 1.0).unsqueeze 1
    x, -(logDet dim alpha beta r)

/// A radial layer with a random centre and small α̂, β̂.
let create (gen: Generator) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    Bijector.create "radial" (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
        (Params.ofList
            [ "centre", gen.normal([| dim |], dtype = dtype)
              "alphaRaw", gen.normal([||], 0.0, 0.01, dtype)
              "betaRaw", gen.normal([||], 0.0, 0.01, dtype) ])
        (forward dim) (inverse dim)

[<CatalogueEntry>]
let entry =
    Entry.exact "radial" (fun t s -> create (Generator 0UL) t (Settings.int "dim" s)) create
        (fun g t d -> create g t d |> Entry.perturb g 1.0)
