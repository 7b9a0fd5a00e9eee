namespace Flows.Laws

open System

/// How far two numbers may differ: |actual − expected| ≤ Abs + Rel · max(|actual|, |expected|).
type Tolerance = { Abs: float; Rel: float }

/// Named tolerance presets.
[<RequireQualifiedAccess>]
module Tolerance =

    /// Two float64 computations of the same value by different routes (a few ulps per operation).
    let float64 = { Abs = 1e-10; Rel = 1e-9 }

    /// Two float32 computations, or float32 against float64 (about 2^-23 per operation).
    let float32 = { Abs = 1e-5; Rel = 1e-4 }

    /// A central difference in float64 with step 1e-6 against an exact derivative: the rounding
    /// error of f divided by the step dominates (about 1e-10 relative per element).
    let centralDifference = { Abs = 1e-6; Rel = 1e-6 }

    /// A float64 round trip through a closed-form inverse.
    let exactRoundTrip = { Abs = 1e-9; Rel = 1e-8 }

    /// A float64 log-det in closed form against the autodiff Jacobian's LU.
    let exactLogDet = { Abs = 1e-8; Rel = 1e-7 }

    /// A whole float32 evaluation against float64: rounding compounds through the layers.
    let float32AgainstFloat64 = { Abs = 1e-3; Rel = 1e-3 }

    /// An iterative inverse solved to `tolerance`: the map's slope can magnify it.
    let iterativeRoundTrip (tolerance: float) = { Abs = 1e3 * tolerance; Rel = 1e-7 }

    /// The log-det of an iteratively inverted map, at the inverse's points.
    let iterativeLogDet (tolerance: float) = { Abs = 1e3 * tolerance; Rel = 1e-6 }

    /// A log-det that is exact only for the map it approximates, within `error` per row.
    let approximateLogDet (error: float) = { Abs = error; Rel = 1e-6 }

    /// The difference allowed between `expected` and `actual`.
    let allowance (tolerance: Tolerance) (expected: float) (actual: float) =
        tolerance.Abs + tolerance.Rel * max (abs actual) (abs expected)

    /// True when `actual` is within the tolerance of `expected`; equal infinities and two NaNs agree.
    let allows (tolerance: Tolerance) (expected: float) (actual: float) =
        expected = actual
        || (Double.IsNaN expected && Double.IsNaN actual)
        || abs (actual - expected) <= allowance tolerance expected actual
