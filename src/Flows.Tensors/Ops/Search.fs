namespace Flows.Tensors

/// Sorted search (spline bins, piecewise maps).
[<AutoOpen>]
module Search =

    type Tensor with
        /// For each value, the index of its bin in the sorted last dimension of this tensor: how many
        /// entries lie below it (`right`: at or below it). Leading dimensions match `values`'
        /// (or this tensor is 1-D and shared). int32, no derivative. NaN in the sorted rows is an error.
        member sorted.searchsorted(values: Tensor, ?right: bool) =
            Tensor.Same("searchsorted", sorted, values)
            if not (sorted.dim >= 1) then Shape.fail "searchsorted" ($"the sorted sequence must have rank 1 or more, got {Shape.show sorted.shape}")
            if not (sorted.dim = 1 || sorted.shape[.. sorted.dim - 2] = values.shape[.. values.dim - 2]) then Shape.fail "searchsorted" ($"sorted rows {Shape.show sorted.shape} do not match the leading dimensions of values {Shape.show values.shape}")
            if sorted.isnan().sum().toScalar() > 0.0 then
                invalidArg "sorted" $"searchsorted: the sorted sequence {Shape.show sorted.shape} contains NaN"
            Tensor.Constant(sorted, fun r -> r.SearchSorted(values.Raw, defaultArg right false))
