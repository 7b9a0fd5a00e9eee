namespace Flows.Properties.Bijectors

open Flows
open Flows.Laws
open Flows.Tensors

/// Independent answers for the bijector tests: per-row Jacobians by autodiff, their log|det| by
/// MathNet's LU (the public law suite's), and the row-by-row application of a map.
[<RequireQualifiedAccess>]
module Reference =

    /// log|det| of each row's autodiff Jacobian of `map` at the rows of `x`.
    let logAbsDetJacobian (map: Tensor -> Tensor) (x: Tensor) = Jacobian.logAbsDet map x

    /// The per-row autodiff Jacobians as float arrays [row][i * d + j].
    let jacobianRows (map: Tensor -> Tensor) (x: Tensor) =
        let d = x.shape[1]
        let values = (Ad.batchJacobian map x).toArray64()
        Array.init x.shape[0] (fun row -> values[row * d * d .. (row + 1) * d * d - 1])

    /// A row of a batch as a batch of one.
    let row (i: int) (x: Tensor) = x.narrow(0, i, 1)

    /// The context restricted to row `i`.
    let contextRow (i: int) (ctx: Context) = { ctx with Condition = ctx.Condition |> Option.map (row i) }
