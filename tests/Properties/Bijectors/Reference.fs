namespace Flows.Properties.Bijectors

open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Tensors

/// Independent answers for the bijector laws: per-row Jacobians by autodiff, their log|det| by
/// MathNet's LU, and the row-by-row application of a map.
[<RequireQualifiedAccess>]
module Reference =

    /// log|det| of each row's autodiff Jacobian of `map` at the rows of `x`.
    let logAbsDetJacobian (map: Tensor -> Tensor) (x: Tensor) =
        let jacobians = Ad.batchJacobian map x
        let d = x.shape[1]
        let values = jacobians.toArray64()
        Array.init x.shape[0] (fun row ->
            let m = Matrix<float>.Build.Dense(d, d, fun i j -> values[row * d * d + i * d + j])
            m.LU().U.Diagonal() |> Seq.sumBy (fun u -> log (abs u)))

    /// The per-row autodiff Jacobians as float arrays [row][i * d + j].
    let jacobianRows (map: Tensor -> Tensor) (x: Tensor) =
        let d = x.shape[1]
        let values = (Ad.batchJacobian map x).toArray64()
        Array.init x.shape[0] (fun row -> values[row * d * d .. (row + 1) * d * d - 1])

    /// A row of a batch as a batch of one.
    let row (i: int) (x: Tensor) = x.narrow(0, i, 1)

    /// The context restricted to row `i`.
    let contextRow (i: int) (ctx: Context) = { ctx with Condition = ctx.Condition |> Option.map (row i) }
