namespace Flows.Nn

open Flows
open Flows.Tensors

/// Inverting a MADE-conditioned element-wise transformer one feature at a time.
[<RequireQualifiedAccess>]
module AutoregressiveInverse =

    /// Width of the bisection bracket at which the iterative inverses of the autoregressive
    /// transformers without a closed form (NAF, SOS, UMNN) stop, before their Newton step.
    let tolerance = 1e-10

    /// x with T(x) = z for an autoregressive T whose feature d reads only the inputs of smaller
    /// degree: features are solved in degree order, each once, by `solveFeature x d z_d`, which sees
    /// x with every feature of smaller degree final and returns (x_d, log dz_d/dx_d), both [n; 1].
    /// Returns x and the forward log-det −Σ_d log dz_d/dx_d. D solves of one feature each, where
    /// solving all features in each of D passes would cost D times more.
    let byDegree (degrees: int[]) (solveFeature: Tensor -> int -> Tensor -> Tensor * Tensor) (z: Tensor) =
        let columns = Array.init degrees.Length (fun d -> z.narrow(1, d, 1).zerosLike())
        let mutable logDet = Bijector.zeroLogDet z
        for d in Array.init degrees.Length id |> Array.sortBy (fun d -> degrees[d]) do
            let x, logDerivative = solveFeature (Tensor.cat(columns, 1)) d (z.narrow(1, d, 1))
            columns[d] <- x
            logDet <- logDet - logDerivative.squeeze 1
        Tensor.cat(columns, 1), logDet
