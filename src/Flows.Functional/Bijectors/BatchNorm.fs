/// Batch normalisation as a bijector (Dinh et al. 2017, RealNVP). Inverse (data → base):
/// z = (x − μ)/√(σ² + ε)·exp(γ) + β, log|det| = Σ (γ − ½·log(σ² + ε)). In a training pass μ, σ²
/// are the batch's (and differentiated); otherwise the running averages, which `Observe` updates
/// with momentum from every training batch. Forward (base → data) undoes the inverse.
module Flows.Bijectors.BatchNorm

open Flows
open Flows.Tensors

let private eps = 1e-5

let private statistics (p: Params) (ctx: Context) (x: Tensor) =
    if ctx.Training && x.shape[0] > 1 then x.mean(0), x.var(0, unbiased = false)
    else p["runningMean"], p["runningVar"]

let private logDet (p: Params) (var: Tensor) = (p["logGamma"] - (var + eps).log() * 0.5).sum()

let private inverse (p: Params) (ctx: Context) (x: Tensor) =
    let mean, var = statistics p ctx x
    let z = (x - mean) / (var + eps).sqrt() * p["logGamma"].exp() + p["beta"]
    z, (logDet p var).expand [| x.shape[0] |]

let private forward (p: Params) (_: Context) (z: Tensor) =
    let mean, var = p["runningMean"], p["runningVar"]
    let x = (z - p["beta"]) * (-p["logGamma"]).exp() * (var + eps).sqrt() + mean
    x, (-(logDet p var)).expand [| z.shape[0] |]

let private observe (momentum: float) (p: Params) (buffers: Params) (ctx: Context) (x: Tensor) =
    if not ctx.Training || x.shape[0] < 2 then p, buffers
    else
        let update (name: string) (batch: Tensor) = name, buffers[name] * (1.0 - momentum) + batch * momentum
        p, buffers.With [ update "runningMean" (x.mean 0); update "runningVar" (x.var(0, unbiased = false)) ]

/// A batch-norm layer with running-average momentum `momentum` (0.1 in PyTorch).
let create (momentum: float) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    Guard.inRange (nameof momentum) 0.0 1.0 momentum
    let b =
        Bijector.create "batchnorm" (Settings.ofList [ "dim", Setting.Int dim; "momentum", Setting.Float momentum ]) [| dim |]
            (Params.ofList [ "logGamma", Tensor.zeros([| dim |], dtype); "beta", Tensor.zeros([| dim |], dtype) ])
            forward inverse
    { b with
        Buffers = Params.ofList [ "runningMean", Tensor.zeros([| dim |], dtype); "runningVar", Tensor.ones([| dim |], dtype) ]
        Observe = Some(observe momentum) }

[<CatalogueEntry>]
let entry =
    Entry.exact "batchnorm" (fun t s -> create (Settings.float "momentum" s) t (Settings.int "dim" s))
        (fun _ t d -> create 0.1 t d)
