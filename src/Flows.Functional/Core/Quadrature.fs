namespace Flows

open System

/// A quadrature rule on [−1, 1] (the integrals of UMNN's monotone transformer).
[<RequireQualifiedAccess>]
type Quadrature =
    /// Clenshaw–Curtis on n + 1 Chebyshev extreme points cos(jπ/n): exact for degree ≤ n.
    | ClenshawCurtis
    /// Gauss–Legendre on n points: exact for degree ≤ 2n − 1.
    | GaussLegendre

/// Nodes and weights of the quadrature rules, in float64, for ∫_{−1}^{1} g(s) ds ≈ Σ_j w_j g(s_j).
[<RequireQualifiedAccess>]
module Quadrature =

    /// The saved name of a rule.
    let name (rule: Quadrature) =
        match rule with
        | Quadrature.ClenshawCurtis -> "clenshaw-curtis"
        | Quadrature.GaussLegendre -> "gauss-legendre"

    /// The rule a saved name stands for.
    let parse (text: string) =
        match text with
        | "clenshaw-curtis" -> Quadrature.ClenshawCurtis
        | "gauss-legendre" -> Quadrature.GaussLegendre
        | other -> invalidArg (nameof text) $"unknown quadrature '{other}', expected clenshaw-curtis or gauss-legendre"

    /// Clenshaw–Curtis with n intervals (Trefethen, "Spectral Methods in MATLAB", clencurt): the
    /// n + 1 nodes cos(jπ/n), from 1 down to −1, with their positive weights.
    let clenshawCurtis (n: int) =
        Guard.positive (nameof n) n
        let theta = Array.init (n + 1) (fun j -> Math.PI * float j / float n)
        let nodes = theta |> Array.map cos
        let weights = Array.zeroCreate (n + 1)
        let v = Array.create (max 0 (n - 1)) 1.0
        let subtract (term: float -> float) = for j in 1 .. n - 1 do v[j - 1] <- v[j - 1] - term theta[j]
        let cosine (k: int) (t: float) = 2.0 * cos (2.0 * float k * t) / float (4 * k * k - 1)
        if n % 2 = 0 then
            weights[0] <- 1.0 / float (n * n - 1)
            for k in 1 .. n / 2 - 1 do subtract (cosine k)
            subtract (fun t -> cos (float n * t) / float (n * n - 1))
        else
            weights[0] <- 1.0 / float (n * n)
            for k in 1 .. (n - 1) / 2 do subtract (cosine k)
        weights[n] <- weights[0]
        for j in 1 .. n - 1 do weights[j] <- 2.0 * v[j - 1] / float n
        nodes, weights

    // P_n(x) and P_n'(x) by the three-term recurrence.
    let private legendre (n: int) (x: float) =
        let mutable p0, p1 = 1.0, x
        for k in 2 .. n do
            let p2 = ((2.0 * float k - 1.0) * x * p1 - (float k - 1.0) * p0) / float k
            p0 <- p1
            p1 <- p2
        let p = if n = 0 then 1.0 else p1
        let previous = if n = 0 then 0.0 else p0
        p, float n * (x * p - previous) / (x * x - 1.0)

    /// Gauss–Legendre with n points: the roots of P_n by Newton's method from cos(π(j + 3/4)/(n + 1/2)),
    /// weights 2 / ((1 − s²) P_n'(s)²).
    let gaussLegendre (n: int) =
        Guard.positive (nameof n) n
        let root j =
            let mutable x = cos (Math.PI * (float j + 0.75) / (float n + 0.5))
            let mutable step = 1.0
            let mutable iterations = 0
            while abs step > 1e-15 && iterations < 100 do
                let p, dp = legendre n x
                step <- p / dp
                x <- x - step
                iterations <- iterations + 1
            x
        let nodes = Array.init n root
        let weights = nodes |> Array.map (fun s -> let _, dp = legendre n s in 2.0 / ((1.0 - s * s) * dp * dp))
        nodes, weights

    /// The nodes and weights of `rule` at resolution n (n intervals for Clenshaw–Curtis, n points
    /// for Gauss–Legendre).
    let rule (rule: Quadrature) (n: int) =
        match rule with
        | Quadrature.ClenshawCurtis -> clenshawCurtis n
        | Quadrature.GaussLegendre -> gaussLegendre n
