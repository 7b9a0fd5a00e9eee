/// The sum-of-squares polynomial transformer (SOS, Jaini, Selby & Yu 2019, "Sum-of-Squares
/// Polynomial Flow"). Per feature, with K squares of degree-r polynomials q_k(t) = Σ_l a_kl t^l of
/// the scaled input t = clamp(x/B, −1, 1),
///   y = c + ∫_0^x (ε + Σ_k q_k(t(u))²) du, in closed form from the coefficients;
///   log dy/dx = log(ε + Σ_k q_k(t)²) > log ε; the inverse by bisection and a Newton step.
/// Overflow guard: the polynomials see only |t| ≤ 1, so no power grows with |x|; beyond ±B the
/// integrand keeps its value at the edge and y continues linearly (C¹ tails, as splines have).
namespace Flows.Transformers

open Flows
open Flows.Tensors

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

    /// The SOS transformer named "sos": K squares of degree r on |x| ≤ bound with floor ε. All squares
    /// would start equal, and gradients could then never tell them apart, so a layer adds N(0, 0.01²)
    /// noise to its conditioner's zero output layer: the map starts near (not at) the identity.
    let transformer (squares: int) (degree: int) (bound: float) (floor: float) : Transformer =
        Guard.that (nameof degree) (degree >= 0) $"the polynomial degree must be at least 0, got {degree}"
        Guard.positive (nameof squares) squares
        Guard.positiveFloat (nameof bound) bound
        Guard.that (nameof floor) (floor > 0.0 && floor < 1.0) $"the floor must be in (0, 1), got {floor}"
        let map (raw: Tensor) = apply (ofRaw squares degree bound floor raw)
        // bisection in a bracket found by doubling, on constants
        let inverse (y: Tensor) (raw: Tensor) =
            let constant = map (raw.noDiff())
            Transformer.solve constant (map raw) (RootFind.expandBracket (constant >> fst) y) y
        { Transformer.stateless "sos" (1 + squares * (degree + 1)) (fun x raw -> map raw x) inverse with
            InverseKind = InverseKind.Iterative Transformer.tolerance
            InitialNoise = 0.01 }
