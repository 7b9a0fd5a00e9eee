namespace Flows.Training

open Flows
open Flows.Data
open Flows.Tensors

/// What data-parallel training needs beyond `Train.fit` with a collective: statistics of the rows
/// of every rank without gathering them.
[<RequireQualifiedAccess>]
module DataParallel =

    /// The standardisation of the rows of every rank (`Standardisation.ofRows` of the whole table),
    /// from all-reduced float64 sums in two passes (means first, then squared deviations from them,
    /// which keeps columns such as 1e8 + N(0, 1) exact). A rank may hold no rows.
    let standardisation (collective: ICollective) (x: Tensor) : Standardisation =
        Guard.that (nameof x) (x.dim = 2) $"expected rows [n; d], got shape {Shape.show x.shape}"
        let d = x.shape[1]
        let x64 = x.cast Dtype.Float64
        let n = x.shape[0]
        let sums = Array.append (if n > 0 then x64.sum(0).toArray64() else Array.zeroCreate d) [| float n |]
        collective.SumInPlace sums
        let total = sums[d]
        Guard.that (nameof x) (total > 0.0) "no rank holds any rows"
        let mean = Array.init d (fun j -> sums[j] / total)
        let squares =
            if n > 0 then (x64 - Tensor.ofArray(mean, [| 1; d |])).square().sum(0).toArray64()
            else Array.zeroCreate d
        collective.SumInPlace squares
        { Mean = mean
          Scale = squares |> Array.map (fun s -> let std = sqrt (s / total) in if std > 0.0 && System.Double.IsFinite std then std else 1.0) }
