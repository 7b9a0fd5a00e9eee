namespace Flows.Plotting

open System

/// The rectangle of the plane a 2-D picture shows: x in [XLow, XHigh], y in [YLow, YHigh].
type Window =
    { XLow: float
      XHigh: float
      YLow: float
      YHigh: float }

/// Windows: squares around the origin, or the range that holds most of a sample.
[<RequireQualifiedAccess>]
module Window =

    /// The rectangle [xLow, xHigh] × [yLow, yHigh]; an empty or non-finite side is an error naming it.
    let create (xLow: float) (xHigh: float) (yLow: float) (yHigh: float) =
        if not (Double.IsFinite xLow && Double.IsFinite xHigh && xHigh > xLow) then
            invalidArg "x" $"Window: expected finite xLow < xHigh, got [{xLow}, {xHigh}]"
        if not (Double.IsFinite yLow && Double.IsFinite yHigh && yHigh > yLow) then
            invalidArg "y" $"Window: expected finite yLow < yHigh, got [{yLow}, {yHigh}]"
        { XLow = xLow; XHigh = xHigh; YLow = yLow; YHigh = yHigh }

    /// The square [−bound, bound]².
    let square (bound: float) =
        if not (Double.IsFinite bound && bound > 0.0) then invalidArg (nameof bound) $"Window.square: bound must be above 0, got {bound}"
        create -bound bound -bound bound

    /// The central 99.5% of `values`, widened by 15% on each side (outliers do not shrink the picture).
    let range (values: float[]) =
        let finite = values |> Array.filter Double.IsFinite |> Array.sort
        if finite.Length = 0 then invalidArg (nameof values) "Window.range: no finite values"
        let at (q: float) = finite[int (q * float (finite.Length - 1))]
        let low, high = at 0.0025, at 0.9975
        let margin = max (0.15 * (high - low)) 1e-3
        low - margin, high + margin

    /// The window holding most of the points of two columns (see `range`).
    let around (xs: float[]) (ys: float[]) =
        let xLow, xHigh = range xs
        let yLow, yHigh = range ys
        create xLow xHigh yLow yHigh
