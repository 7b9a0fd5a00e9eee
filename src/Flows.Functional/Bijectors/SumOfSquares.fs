/// Sum-of-squares polynomial flow (SOS, Jaini, Selby & Yu 2019, "Sum-of-Squares Polynomial Flow")
/// on a MADE conditioner. Per feature, with K squares of degree-r polynomials q_k(t) = Σ_l a_kl t^l
/// of the scaled input t = clamp(x/B, −1, 1),
///   inverse (data → base)  z = c + ∫_0^x (ε + Σ_k q_k(t(u))²) du, in closed form from the
///   coefficients, one pass (fast density); log dz/dx = log(ε + Σ_k q_k(t)²) > log ε
///   forward (base → data)  x by bisection in a bracket found by doubling, then a differentiable
///   Newton step, one feature per pass in the MADE's order (sampling), to `AutoregressiveInverse.tolerance`.
/// Overflow guard: the polynomials see only |t| ≤ 1, so no power grows with |x|; beyond ±B the
/// integrand keeps its value at the edge and z continues linearly (C¹ tails, as splines have).
module Flows.Bijectors.SumOfSquares

open Flows
open Flows.Nn
open Flows.Tensors

/// An SOS layer's hyperparameters.
type Spec =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Degree r of each squared polynomial (z is then a polynomial of degree 2r + 1 inside ±B).
      Degree: int
      /// Number of squares K.
      Squares: int
      /// The polynomial part acts on |x| ≤ Bound; outside it z is linear.
      Bound: float
      /// The floor ε added to the integrand, so dz/dx ≥ ε > 0.
      Floor: float
      ContextDim: int }

/// The SOS transformer of every feature: the constant c [n; D], the coefficients a [n; D; K; r + 1]
/// and the integrated polynomial's coefficients [n; D; 2r + 2] (of t^0 … t^(2r+1)).
type Polynomial =
    { Shift: Tensor
      Coefficients: Tensor
      Integrated: Tensor
      Bound: float
      Floor: float }

/// Functions of the SOS transformer, element-wise in the features.
[<RequireQualifiedAccess>]
module Polynomial =

    /// [n; D; count]: t^0, t^1, …, t^(count − 1) of t [n; D].
    let powers (count: int) (t: Tensor) =
        let columns = Array.zeroCreate count
        columns[0] <- t.onesLike()
        for j in 1 .. count - 1 do columns[j] <- columns[j - 1] * t
        Tensor.stack(columns, 2)

    // S[(r+1)·l + m, l + m + 1] = 1/(l + m + 1): maps the Gram matrix Σ_k a_kl a_km to the
    // coefficients of ∫_0^t Σ_k q_k(s)² ds
    let private integration (degree: int) (like: Tensor) =
        let size, count = degree + 1, 2 * degree + 2
        Tensor.ofArray(
            Array.init (size * size * count) (fun k ->
                let row, column = k / count, k % count
                let l, m = row / size, row % size
                if column = l + m + 1 then 1.0 / float column else 0.0),
            [| size * size; count |]).cast(like.dtype).moveTo like.device

    /// The transformer from raw conditioner outputs [n; D; 1 + K(r + 1)] (c, then a row-major by
    /// square); a raw 0 gives c = 0 and q_k ≡ √((1 − ε)/K), so the integrand is 1 and z = x.
    let ofRaw (squares: int) (degree: int) (bound: float) (floor: float) (raw: Tensor) =
        let n, dim, size = raw.shape[0], raw.shape[1], degree + 1
        let start =
            Tensor.ofArray(Array.init (squares * size) (fun k -> if k % size = 0 then sqrt ((1.0 - floor) / float squares) else 0.0), [| squares; size |])
                .cast(raw.dtype).moveTo raw.device
        let a = raw.narrow(2, 1, squares * size).reshape [| n; dim; squares; size |] + start
        let gram = (a.unsqueeze(4) * a.unsqueeze(3)).sum(2).reshape [| n * dim; size * size |]
        { Shift = raw.narrow(2, 0, 1).squeeze 2
          Coefficients = a
          Integrated = gram.matmul(integration degree raw).reshape [| n; dim; 2 * degree + 2 |]
          Bound = bound
          Floor = floor }

    /// The transformer of feature d alone (every tensor narrowed to [n; 1; ...]).
    let feature (d: int) (p: Polynomial) =
        { p with Shift = p.Shift.narrow(1, d, 1); Coefficients = p.Coefficients.narrow(1, d, 1); Integrated = p.Integrated.narrow(1, d, 1) }

    /// The detached transformer, for root finding on constants.
    let noDiff (p: Polynomial) =
        { p with Shift = p.Shift.noDiff(); Coefficients = p.Coefficients.noDiff(); Integrated = p.Integrated.noDiff() }

    /// z and log dz/dx for x [n; D]: the integrated polynomial at t = clamp(x/B) plus the linear
    /// tail (x − clamp(x)) · slope, where the slope ε + Σ_k q_k(t)² is a sum of squares (never < ε).
    let apply (p: Polynomial) (x: Tensor) =
        let clamped = x.clamp(-p.Bound, p.Bound)
        let t = clamped / p.Bound
        let count = p.Integrated.shape[2]
        let tPowers = powers count t
        let q = (p.Coefficients * tPowers.narrow(2, 0, count / 2).unsqueeze(2)).sum(3)
        let slope = q.square().sum(2) + p.Floor
        let integral = (p.Integrated * tPowers).sum(2) * p.Bound + clamped * p.Floor
        p.Shift + integral + (x - clamped) * slope, slope.log()

    /// The x with SOS(x) = z: bisection in a doubled bracket on constants, then one Newton step.
    let solve (p: Polynomial) (z: Tensor) =
        let c = noDiff p
        RootFind.solveIncreasing (apply c) (apply p) z (RootFind.expandBracket (apply c >> fst) z) AutoregressiveInverse.tolerance

/// The SOS layer. All squares would start equal, and gradients could then never tell them apart, so
/// the MADE's zero output layer gets N(0, 0.01²) noise: the map starts near (not at) the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    Guard.that (nameof spec.Degree) (spec.Degree >= 0) $"the polynomial degree must be at least 0, got {spec.Degree}"
    Guard.positive (nameof spec.Squares) spec.Squares
    Guard.positiveFloat (nameof spec.Bound) spec.Bound
    Guard.that (nameof spec.Floor) (spec.Floor > 0.0 && spec.Floor < 1.0) $"the floor must be in (0, 1), got {spec.Floor}"
    let size = 1 + spec.Squares * (spec.Degree + 1)
    let made, net =
        Made.create gen dtype
            { Dim = spec.Dim; Hidden = spec.Hidden; Multiplier = size; Order = spec.Order; ContextDim = spec.ContextDim
              ResidualBlocks = 0; Activation = spec.Activation }
    let last = made.Layers[made.Layers.Length - 1]
    let net = net.With [ for name in [ $"{last}.weight"; $"{last}.bias" ] -> name, net[name] + gen.normal(net[name].shape, 0.0, 0.01, dtype) ]
    let dim = spec.Dim
    let polynomial (p: Params) (ctx: Context) (x: Tensor) =
        (Made.apply made p ctx.Condition x).reshape [| x.shape[0]; dim; size |]
        |> Polynomial.ofRaw spec.Squares spec.Degree spec.Bound spec.Floor
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        z |> AutoregressiveInverse.byDegree made.Degrees (fun x d zd ->
            let poly = polynomial p ctx x |> Polynomial.feature d
            let xd = Polynomial.solve poly zd
            xd, snd (Polynomial.apply poly xd))
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let z, logDerivative = Polynomial.apply (polynomial p ctx x) x
        z, logDerivative.sum(1)
    let settings =
        Settings.ofList (
            [ "degree", Setting.Int spec.Degree
              "squares", Setting.Int spec.Squares
              "polynomialBound", Setting.Float spec.Bound
              "floor", Setting.Float spec.Floor ]
            @ Made.settings made)
    Bijector.create "sos" settings [| dim |] (net.Prefixed "made")
        (fun p ctx z -> forward (p.Scope "made") ctx z) (fun p ctx x -> inverse (p.Scope "made") ctx x)

/// An SOS layer as in the paper's experiments: K = 3 squares of degree r = 2 (z of degree 5), on
/// |x| ≤ 5 with floor 10⁻³, tanh hidden layers.
let sos (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (order: Order) =
    create gen dtype
        { Dim = dim; Hidden = hidden; Order = order; Activation = Activation.Tanh; Degree = 2; Squares = 3
          Bound = 5.0; Floor = 1e-3; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let made = Made.ofSettings s
    create (Generator 0UL) dtype
        { Dim = made.Dim; Hidden = made.Hidden; Order = made.Order; Activation = made.Activation
          Degree = Settings.int "degree" s; Squares = Settings.int "squares" s
          Bound = Settings.float "polynomialBound" s; Floor = Settings.float "floor" s; ContextDim = made.ContextDim }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        InverseKind = InverseKind.Iterative AutoregressiveInverse.tolerance }

let private spec (order: Order) (dim: int) =
    { Dim = dim; Hidden = [ 8 ]; Order = order; Activation = Activation.Tanh; Degree = 2; Squares = 3
      Bound = 4.0; Floor = 1e-3; ContextDim = 0 }

[<CatalogueEntry>]
let entry = entryFor "sos" (spec Order.Reversed)
