/// The affine and additive transformers (RealNVP, Dinh et al. 2017; NICE, Dinh et al. 2015; MAF,
/// Papamakarios et al. 2017): per feature, with raw parameters (t, s),
///   affine    y = x · exp(σ(s)) + t,   log dy/dx = σ(s), σ the layer's log-scale map
///   additive  y = x + t,               log dy/dx = 0
/// both through the fused `Tensor.affineMap` where they scale.
module Flows.Transformers.Affine

open Flows
open Flows.Tensors

// the raw parameters' last dimension dropped: [..., d, 1] → [..., d]
let private column (j: int) (raw: Tensor) = raw.narrow(-1, j, 1).reshape raw.shape[.. raw.dim - 2]

/// The affine transformer: raw parameters (shift, raw log-scale) per feature, the log-scale given
/// by `logScale` (a bounded map keeps exp from overflowing).
let transformer (logScale: Tensor -> Tensor) : Transformer =
    let parts (raw: Tensor) = column 0 raw, logScale (column 1 raw)
    Transformer.stateless "affine" 2
        (fun x raw -> let shift, s = parts raw in Tensor.affineMap(x, shift, s, false), s)
        (fun y raw -> let shift, s = parts raw in Tensor.affineMap(y, shift, s, true), -s)

/// The additive transformer: one raw parameter, the shift, per feature.
let additive : Transformer =
    Transformer.stateless "additive" 1
        (fun x raw -> x + column 0 raw, x.zerosLike())
        (fun y raw -> y - column 0 raw, y.zerosLike())
