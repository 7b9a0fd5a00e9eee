namespace Flows.Transformers

open Flows
open Flows.Tensors

/// The monotone splines on [−B, B] with identity tails, as transformers.
[<RequireQualifiedAccess>]
type SplineKind =
    /// Rational-quadratic (Durkan et al. 2019, "Neural Spline Flows").
    | RationalQuadratic
    /// Piecewise-linear (Müller et al. 2019), learnt or fixed bin widths.
    | Linear of widths: PiecewiseLinear.Widths
    /// Piecewise-quadratic (Müller et al. 2019).
    | Quadratic
    /// Monotone cubic with Steffen derivatives (Durkan et al. 2019, "Cubic-Spline Flows").
    | Cubic

/// Names and transformers of the spline kinds.
[<RequireQualifiedAccess>]
module SplineKind =

    /// Every kind, in the order of the union.
    let all =
        [ SplineKind.RationalQuadratic; SplineKind.Linear PiecewiseLinear.Widths.Learnt; SplineKind.Linear PiecewiseLinear.Widths.Fixed
          SplineKind.Quadratic; SplineKind.Cubic ]

    /// The kind's transformer for K bins on [−bound, bound] with the default minima (1e-3).
    let transformer (bins: int) (bound: float) (kind: SplineKind) : Transformer =
        let config = Spline.config bins bound
        match kind with
        | SplineKind.RationalQuadratic -> RationalQuadratic.transformer config
        | SplineKind.Linear widths -> PiecewiseLinear.transformer widths config
        | SplineKind.Quadratic -> PiecewiseQuadratic.transformer config
        | SplineKind.Cubic -> CubicSpline.transformer config

    /// The x and y knots [..., K+1] that raw parameters [..., P] give the kind's spline.
    let knots (bins: int) (bound: float) (kind: SplineKind) (raw: Tensor) =
        let config = Spline.config bins bound
        match kind with
        | SplineKind.RationalQuadratic -> RationalQuadratic.knots config raw
        | SplineKind.Linear widths -> PiecewiseLinear.knots widths config raw
        | SplineKind.Quadratic -> let xk, yk, _ = PiecewiseQuadratic.knotsAndDensities config raw in xk, yk
        | SplineKind.Cubic -> let xk, yk, _ = CubicSpline.knotsAndDerivatives config raw in xk, yk

    /// The kind's name in bijector names and settings: "rq", "linear", "linear-fixed", "quadratic", "cubic".
    let name (kind: SplineKind) = (transformer 2 1.0 kind).Name

    /// The kind called `name`, or an error listing the names there are.
    let parse (name': string) =
        match all |> List.tryFind (fun k -> name k = name') with
        | Some kind -> kind
        | None -> invalidArg "name" $"""no spline kind '{name'}'; have: {System.String.Join(", ", all |> List.map name)}"""
