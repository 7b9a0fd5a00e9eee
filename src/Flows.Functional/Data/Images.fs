namespace Flows.Data

open System
open Flows
open Flows.Tensors

/// Grey-level images as data for a density model: uniform dequantisation, its inverse, and
/// dynamic binarisation.
[<RequireQualifiedAccess>]
module Images =

    /// Uniform dequantisation: integer levels k ∈ {0 .. levels − 1} become x = (k + u) / levels − ½
    /// with u ~ U[0, 1) per element, continuous data in [−½, ½). A density q on x bounds the
    /// discrete log-likelihood from below: log P(k) ≥ E_u[log q(x)] − D·log(levels).
    let dequantise (gen: Generator) (levels: int) (dtype: Dtype) (k: Tensor) =
        let u = gen.uniform(k.shape, dtype = Dtype.Float64)
        ((k.cast Dtype.Float64 + u) / float levels - 0.5).cast dtype

    /// The integer levels of dequantised (or sampled) data, clamped to 0 .. levels − 1.
    let quantise (levels: int) (x: Tensor) =
        ((x.cast Dtype.Float64 + 0.5) * float levels).floor().clamp(0.0, float (levels - 1))

    /// Dynamic binarisation (as in the VAE literature): each grey level g of 0 .. `levels` − 1 becomes
    /// 1 with probability g / (levels − 1), drawn afresh on every call, so every epoch sees new binary
    /// images whose expectation is the grey image.
    let binarise (gen: Generator) (levels: int) (k: Tensor) =
        Guard.that (nameof levels) (levels >= 2) $"need at least 2 grey levels, got {levels}"
        let u = gen.uniform(k.shape, dtype = k.dtype, device = k.device)
        (u * float (levels - 1)).lt(k).cast k.dtype
