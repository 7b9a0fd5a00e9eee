namespace Flows.Training

open System

/// What validation has seen so far: the best score with its model and step, and the checks since.
type ValidationHistory<'model> =
    { Best: ('model * float * int) option
      SinceBest: int
      /// Consecutive checks far above the best (a finite but exploding fit).
      FarAbove: int }

/// Early stopping as pure updates of a `ValidationHistory`.
[<RequireQualifiedAccess>]
module EarlyStopping =

    /// Nothing seen yet.
    let start<'model> : ValidationHistory<'model> = { Best = None; SinceBest = 0; FarAbove = 0 }

    // a validation this far above its best counts towards stopping a finite but exploding fit
    let private farAboveBest (nll: float) (bestNll: float) = not (Double.IsFinite nll) || nll > bestNll + max 1.0 (0.5 * abs bestNll)

    /// The history after validation NLL `nll` of `model` at `step`; only a finite score can be the best.
    let record (step: int) (model: 'model) (nll: float) (history: ValidationHistory<'model>) =
        match history.Best with
        | Some(_, bestNll, _) when not (nll < bestNll) ->
            { history with SinceBest = history.SinceBest + 1; FarAbove = (if farAboveBest nll bestNll then history.FarAbove + 1 else 0) }
        | _ when Double.IsFinite nll -> { Best = Some(model, nll, step); SinceBest = 0; FarAbove = 0 }
        | _ -> { history with SinceBest = history.SinceBest + 1 }

    /// The step of the best score, if any.
    let bestStep (history: ValidationHistory<'model>) = history.Best |> Option.map (fun (_, _, step) -> step)

    /// Whether validation stops training at `step`, and why: no improvement for `patience` checks, or
    /// scores far above the best for as many (5 without patience).
    let verdict (patience: int option) (step: int) (history: ValidationHistory<'model>) =
        match patience, bestStep history with
        | Some p, Some at when history.SinceBest >= p ->
            Some(StopReason.EarlyStopped(step, at), $"early stop at step {step}: validation NLL has not improved for {p} checks; kept step {at}")
        | _, Some at when history.FarAbove >= defaultArg patience 5 ->
            Some(StopReason.Exploded(step, at), $"stopped at step {step}: validation NLL stayed far above its best for {history.FarAbove} checks; kept step {at}")
        | _ -> None
