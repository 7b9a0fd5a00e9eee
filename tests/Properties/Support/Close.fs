namespace Flows.Properties.Support

open System
open Flows.Laws
open Flows.Tensors

/// Comparisons whose failure message says what differs, where, by how much, and what was allowed.
[<RequireQualifiedAccess>]
module Close =

    let private show (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)

    /// Fails unless `actual` is within `tolerance` of `expected`.
    let scalar (what: string) (tolerance: Tolerance) (expected: float) (actual: float) =
        if not (Tolerance.allows tolerance expected actual) then
            failwith
                $"{what}: expected {show expected}, got {show actual} (difference {show (actual - expected)}, \
                  tolerance Abs {show tolerance.Abs} + Rel {show tolerance.Rel})"

    /// Fails at the first index where the arrays differ by more than `tolerance`, or on a length mismatch.
    let arrays (what: string) (tolerance: Tolerance) (expected: float[]) (actual: float[]) =
        if expected.Length <> actual.Length then
            failwith $"{what}: expected {expected.Length} elements, got {actual.Length}"
        for i in 0 .. expected.Length - 1 do
            if not (Tolerance.allows tolerance expected[i] actual[i]) then
                failwith
                    $"{what}: at index {i} expected {show expected[i]}, got {show actual[i]} \
                      (difference {show (actual[i] - expected[i])}, tolerance Abs {show tolerance.Abs} + Rel {show tolerance.Rel})"

    /// Fails unless the tensor has `shape` (printed as NumPy prints shapes).
    let shape (what: string) (expected: int[]) (actual: Tensor) =
        if actual.shape <> expected then
            failwith $"{what}: expected shape {Shape.show expected}, got {Shape.show actual.shape}"

    /// Fails unless the tensors have the same shape and elements within `tolerance` (read as float64).
    let tensors (what: string) (tolerance: Tolerance) (expected: Tensor) (actual: Tensor) =
        shape what expected.shape actual
        arrays what tolerance (expected.toArray64()) (actual.toArray64())

    /// Fails unless the tensor has `shape` and elements within `tolerance` of `expected`.
    let values (what: string) (tolerance: Tolerance) (shape': int[]) (expected: float[]) (actual: Tensor) =
        shape what shape' actual
        arrays what tolerance expected (actual.toArray64())
