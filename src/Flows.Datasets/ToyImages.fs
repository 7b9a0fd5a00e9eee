namespace Flows.Datasets

open System
open Flows
open Flows.Tensors

/// Seeded synthetic grey-level images for the image-flow examples and tests.
[<RequireQualifiedAccess>]
module ToyImages =

    /// `n` single-channel images [n; 1; height; width] of integer grey levels 0 .. levels − 1 (as
    /// floats): each has one bright bar (a full row or column, at a random place and level in the
    /// upper half) over a dark background, and one round blob whose brightness falls off from a
    /// random centre.
    let barsAndBlobs (gen: Generator) (n: int) (levels: int) (height: int) (width: int) =
        Guard.positive (nameof n) n
        Guard.that (nameof levels) (levels >= 2) $"need at least 2 grey levels, got {levels}"
        Guard.positive (nameof height) height
        Guard.positive (nameof width) width
        let uniform (count: int) = gen.uniform([| n * count |], dtype = Dtype.Float64).toArray64()
        let bar, blob = uniform 4, uniform 4
        let top = float (levels - 1)
        let pixels = Array.zeroCreate<float> (n * height * width)
        for i in 0 .. n - 1 do
            let vertical = bar[4 * i] < 0.5
            let place = int (bar[4 * i + 1] * float (if vertical then width else height))
            let barLevel = floor (top * (0.5 + 0.5 * bar[4 * i + 2]) + 0.5)
            let thick = bar[4 * i + 3] < 0.3
            let cy, cx = blob[4 * i] * float (height - 1), blob[4 * i + 1] * float (width - 1)
            let radius, peak = 1.0 + 1.5 * blob[4 * i + 2], top * (0.4 + 0.6 * blob[4 * i + 3])
            for y in 0 .. height - 1 do
                for x in 0 .. width - 1 do
                    let along = if vertical then x else y
                    let onBar = along = place || (thick && along = place + 1)
                    let d2 = (float y - cy) ** 2.0 + (float x - cx) ** 2.0
                    let blobLevel = peak * exp (-d2 / (2.0 * radius * radius))
                    let value = max (if onBar then barLevel else 0.0) blobLevel
                    pixels[(i * height + y) * width + x] <- Math.Round(min top value)
        Tensor.ofArray(pixels, [| n; 1; height; width |])
