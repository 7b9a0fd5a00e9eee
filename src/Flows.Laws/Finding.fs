namespace Flows.Laws

open System
open Flows.Tensors

/// The worst disagreement a law found: the error, how many allowances it spans (above 1 fails),
/// the input row that showed it and a sentence saying what was compared.
type internal Finding =
    { Error: float
      Excess: float
      Input: float[]
      Detail: string }

/// Comparing tensors row by row and keeping the worst finding.
[<RequireQualifiedAccess>]
module internal Finding =

    /// Nothing wrong found.
    let none = { Error = 0.0; Excess = 0.0; Input = [||]; Detail = "" }

    /// A failure without a number to measure (an exception, a wrong shape, a missing codec).
    let failure (input: float[]) (detail: string) = { Error = infinity; Excess = infinity; Input = input; Detail = detail }

    /// The worse of two findings.
    let worse (a: Finding) (b: Finding) = if b.Excess > a.Excess then b else a

    /// The worst of several findings.
    let worst (findings: Finding seq) = Seq.fold worse none findings

    /// Row `i` of a [batch; ...] tensor as numbers (empty for an empty tensor).
    let row (i: int) (t: Tensor) =
        if t.dim = 0 || t.shape[0] <= i then [||] else t.narrow(0, i, 1).toArray64()

    let private show (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)

    // how many allowances the difference spans (above 1 fails); agreeing NaNs and equal
    // infinities span none, a NaN or an infinite difference spans infinitely many
    let private excess (tolerance: Tolerance) (expected: float) (actual: float) =
        if expected = actual || (Double.IsNaN expected && Double.IsNaN actual) then 0.0
        else
            let difference = abs (actual - expected)
            let allowed = Tolerance.allowance tolerance expected actual
            if not (Double.IsFinite difference) then infinity
            elif allowed > 0.0 then difference / allowed
            else infinity

    /// Compares `actual` with `expected` element by element; `input` holds the rows (one per
    /// leading index) the finding points at.
    let compare (what: string) (tolerance: Tolerance) (input: Tensor) (expected: Tensor) (actual: Tensor) =
        if expected.shape <> actual.shape then
            failure (row 0 input) $"{what}: expected shape {Shape.show expected.shape}, got {Shape.show actual.shape}"
        else
            let e, a = expected.toArray64(), actual.toArray64()
            let perRow = if expected.dim = 0 || expected.shape[0] = 0 then max 1 e.Length else e.Length / expected.shape[0]
            let mutable found = none
            for k in 0 .. e.Length - 1 do
                let x = excess tolerance e[k] a[k]
                if x > found.Excess then
                    found <-
                        { Error = (if Double.IsNaN(a[k] - e[k]) then infinity else abs (a[k] - e[k]))
                          Excess = x
                          Input = row (k / perRow) input
                          Detail = $"{what}: at row {k / perRow}, element {k % perRow} expected {show e[k]}, got {show a[k]} (tolerance Abs {show tolerance.Abs} + Rel {show tolerance.Rel})" }
            found

    /// A failure at the first row of `t` holding a NaN or an infinity, else none.
    let finite (what: string) (input: Tensor) (t: Tensor) =
        let values = t.toArray64()
        match values |> Array.tryFindIndex (Double.IsFinite >> not) with
        | None -> none
        | Some k ->
            let perRow = if t.dim = 0 || t.shape[0] = 0 then max 1 values.Length else values.Length / t.shape[0]
            failure (row (k / perRow) input) $"{what}: {show values[k]} at row {k / perRow}"
