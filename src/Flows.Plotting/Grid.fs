namespace Flows.Plotting

open Flows.Tensors

/// The n × n points of a window at which a density is evaluated for a heat map.
[<RequireQualifiedAccess>]
module Grid =

    /// n evenly spaced values from `low` to `high`, both included.
    let axis (n: int) (low: float) (high: float) =
        if n < 2 then invalidArg (nameof n) $"Grid.axis: n must be at least 2, got {n}"
        Array.init n (fun k -> low + (high - low) * float k / float (n - 1))

    /// The grid as float64 rows [n·n; 2] in the order `Panel.heatMap` reads values: point row·n + col
    /// sits at (x[col], y[row]), row 0 at the window's lowest y.
    let points (n: int) (window: Window) =
        let xs = axis n window.XLow window.XHigh
        let ys = axis n window.YLow window.YHigh
        let flat = Array.init (2 * n * n) (fun i -> let k = i / 2 in if i % 2 = 0 then xs[k % n] else ys[k / n])
        Tensor.ofArray(flat, [| n * n; 2 |])
