namespace Flows

open Flows.Tensors

/// Argument checks at the API boundary: each raises an ArgumentException that names the argument,
/// what was expected and what came.
[<RequireQualifiedAccess>]
module Guard =

    /// An integer of at least 1.
    let positive (name: string) (value: int) =
        if value < 1 then invalidArg name $"must be at least 1, got {value}"

    /// A finite float strictly above zero.
    let positiveFloat (name: string) (value: float) =
        if not (value > 0.0 && System.Double.IsFinite value) then invalidArg name $"must be a finite number above 0, got {value}"

    /// A float in [low, high].
    let inRange (name: string) (low: float) (high: float) (value: float) =
        if not (value >= low && value <= high) then invalidArg name $"must be in [{low}, {high}], got {value}"

    /// A condition with its message.
    let that (name: string) (condition: bool) (message: string) =
        if not condition then invalidArg name message

    /// Rows of a [batch; dim] tensor with the expected dim.
    let rows (name: string) (dim: int) (x: Tensor) =
        if x.dim <> 2 || x.shape[1] <> dim then
            invalidArg name $"expected a [batch; {dim}] tensor, got shape {Shape.show x.shape}"

    /// A tensor whose trailing dimensions are `event`.
    let event (name: string) (event: int[]) (x: Tensor) =
        if x.dim <> event.Length + 1 || x.shape[1..] <> event then
            let expected = System.String.Join("; ", event)
            invalidArg name $"expected a [batch; {expected}] tensor, got shape {Shape.show x.shape}"

    /// Every element finite.
    let finite (name: string) (x: Tensor) =
        if (x.isnan() + x.isinf()).sum().toScalar() > 0.0 then
            invalidArg name $"contains NaN or infinite values (shape {Shape.show x.shape})"
