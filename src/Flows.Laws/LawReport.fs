namespace Flows.Laws

open System

/// Whether a law held.
[<RequireQualifiedAccess>]
type Verdict =
    | Holds
    | Fails
    /// The law does not apply to this bijector (no parameters, unbounded domain, not on the plane).
    | NotApplicable

/// The outcome of one law: the verdict, the worst error seen (|actual − expected|, infinite for
/// a non-finite value or an exception), the input row that showed it, and what was compared.
type LawReport =
    { Law: Law
      Verdict: Verdict
      WorstError: float
      Input: float[]
      Detail: string }

/// A failed check: its message lists every failed law with its worst error and input.
type LawException(message: string, failed: LawReport list) =
    inherit Exception(message)
    /// The reports of the laws that failed.
    member _.Failed = failed

/// Reading reports.
[<RequireQualifiedAccess>]
module LawReport =

    /// True unless the law failed.
    let holds (report: LawReport) = report.Verdict <> Verdict.Fails

    /// One line: the law, its verdict, and for a failure the worst error, the input and the detail.
    let describe (report: LawReport) =
        let input = String.Join(", ", report.Input |> Array.map (fun v -> v.ToString("G6", Globalization.CultureInfo.InvariantCulture)))
        match report.Verdict with
        | Verdict.Holds -> $"{Law.name report.Law}: holds (worst error {report.WorstError:G3})"
        | Verdict.NotApplicable -> $"{Law.name report.Law}: not applicable ({report.Detail})"
        | Verdict.Fails -> $"{Law.name report.Law}: FAILS, worst error {report.WorstError:G3} at input [{input}]: {report.Detail}"

    /// Throws a LawException listing the failed laws (for any test framework: the message is the report).
    let assertAll (what: string) (reports: LawReport list) =
        match reports |> List.filter (holds >> not) with
        | [] -> ()
        | failed ->
            let lines = failed |> List.map describe |> String.concat Environment.NewLine
            raise (LawException($"{what}: {failed.Length} law(s) failed{Environment.NewLine}{lines}", failed))
