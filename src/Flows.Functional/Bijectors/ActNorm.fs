/// ActNorm (Kingma & Dhariwal 2018, Glow): a per-feature affine map y = x·exp(s) + t, forward
/// base → data, log|det J| = Σ s, whose parameters are set from the first data batch it observes so
/// that its inverse maps that batch to zero mean and unit variance (data-dependent initialisation).
module Flows.Bijectors.ActNorm

open Flows
open Flows.Tensors

let private forward (p: Params) (_: Context) (x: Tensor) =
    let s = p["logScale"]
    x * s.exp() + p["shift"], s.sum().expand [| x.shape[0] |]

let private inverse (p: Params) (_: Context) (y: Tensor) =
    let s = p["logScale"]
    (y - p["shift"]) * (-s).exp(), (-(s.sum())).expand [| y.shape[0] |]

/// On the first batch: shift = mean, log-scale = log std (per feature); later batches change nothing.
let private initialise (p: Params) (buffers: Params) (_: Context) (y: Tensor) =
    if buffers["initialised"].toScalar() > 0.0 || y.shape[0] < 2 then p, buffers
    else
        let mean = y.mean(0)
        let std = y.std(0, unbiased = false) + 1e-6
        p.With [ "shift", mean; "logScale", std.log() ], buffers.With [ "initialised", buffers["initialised"].onesLike() ]

/// An ActNorm layer (identity until it observes data).
let create (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    let b =
        Bijector.create "actnorm" (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
            (Params.ofList [ "logScale", Tensor.zeros([| dim |], dtype); "shift", Tensor.zeros([| dim |], dtype) ])
            forward inverse
    { b with Buffers = Params.ofList [ "initialised", Tensor.zeros([||], dtype) ]; Observe = Some initialise }

[<CatalogueEntry>]
let entry =
    { Entry.exact "actnorm" (fun t s -> create t (Settings.int "dim" s)) (fun _ t d -> create t d) with IdentityAtInit = true }
