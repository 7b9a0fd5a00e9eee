namespace Flows.Nn

open Flows
open Flows.Tensors

/// Inverting an autoregressive map one feature at a time: the one sequential routine behind every
/// masked-autoregressive layer (MAF's sampling, IAF's density).
[<RequireQualifiedAccess>]
module AutoregressiveInverse =

    /// x with T(x) = z for an autoregressive T whose feature d reads only the inputs of smaller
    /// degree: features are solved in degree order, each once, by `solveFeature x d z_d`, which sees
    /// x with every feature of smaller degree final (the others 0) and returns (x_d, log dx_d/dz_d),
    /// both [n; 1]. Returns x and the log-det Σ_d log dx_d/dz_d. D solves of one feature each, where
    /// solving all features in each of D passes would cost D times more.
    let byDegree (degrees: int[]) (solveFeature: Tensor -> int -> Tensor -> Tensor * Tensor) (z: Tensor) =
        let columns = Array.init degrees.Length (fun d -> z.narrow(1, d, 1).zerosLike())
        let logDerivatives = Array.zeroCreate degrees.Length
        for d in Array.init degrees.Length id |> Array.sortBy (fun d -> degrees[d]) do
            let x, logDerivative = solveFeature (Tensor.cat(columns, 1)) d (z.narrow(1, d, 1))
            columns[d] <- x
            logDerivatives[d] <- logDerivative
        Tensor.cat(columns, 1), Tensor.cat(logDerivatives, 1).sum(1)
