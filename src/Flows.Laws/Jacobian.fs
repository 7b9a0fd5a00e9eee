namespace Flows.Laws

open MathNet.Numerics.LinearAlgebra
open Flows.Tensors

/// The independent answer for the log-det laws: each row's Jacobian by autodiff, its log|det| by
/// MathNet's LU (a different code path from anything a bijector runs).
[<RequireQualifiedAccess>]
module Jacobian =

    /// log|det| of each row's autodiff Jacobian of `map` at the rows of `x` [batch; d].
    let logAbsDet (map: Tensor -> Tensor) (x: Tensor) =
        let jacobians = Ad.batchJacobian map x
        let d = x.shape[1]
        let values = jacobians.toArray64()
        Array.init x.shape[0] (fun row ->
            let m = Matrix<float>.Build.Dense(d, d, fun i j -> values[row * d * d + i * d + j])
            m.LU().U.Diagonal() |> Seq.sumBy (fun u -> log (abs u)))
