/// Scoring throughput of the CLI's default table flow (`DataFit.defaultFlow`, what `flows train`
/// builds and `flows logprob` scores): rows per second of `Model.logProb` on one chunk of the CLI's
/// size (65,536 rows), for small and large tables' capacities, and the share of the time in the
/// conditioner products (the MLPs' GEMMs timed alone on the same shapes).
module LogProbBench

open Flows
open Flows.Training
open Flows.Tensors

let private chunk = 65536

let private case (rows: int) (columns: int) =
    let capacity = TableCapacity.forTable rows columns
    let flow = DataFit.defaultFlow capacity columns 0 1UL
    // away from the identity start, so the splines' bins are all visited
    let flow = { flow with Layers = flow.Layers |> List.map (Entry.perturb (Generator 2UL) 0.05) }
    let x = (Generator 3UL).normal([| chunk; columns |])
    let name = $"logprob.{columns}cols.{capacity.Layers}x{capacity.Hidden}.bins{capacity.Bins}"
    let seconds = Timing.measure (fun () -> (Flow.logProb Context.none x flow).toArray32() |> ignore)
    Timing.report $"{name}.rows_per_second" (float chunk / seconds) "rows/s"
    // the same GEMMs alone, on the row blocks Flow.logProb scores: per layer [b; a] @ [a; h],
    // [b; h] @ [h; h] and [b; h] @ [h; out]
    let block = 512
    let a = columns / 2
    let outputs = (columns - a) * (3 * capacity.Bins + 1)
    let h = capacity.Hidden
    let g = Generator 4UL
    let xs = g.normal([| block; a |])
    let w1, w2, w3 = g.normal([| a; h |]), g.normal([| h; h |]), g.normal([| h; outputs |])
    let hidden = g.normal([| block; h |])
    let gemms = Timing.measure (fun () -> xs.matmul(w1) |> ignore; hidden.matmul(w2) |> ignore; hidden.matmul(w3) |> ignore)
    Timing.report $"{name}.gemm_share" (100.0 * float capacity.Layers * float (chunk / block) * gemms / seconds) "%"

/// Prints the section.
let run () =
    Timing.comment $"logprob: Flow.logProb of the default table flow on {chunk} rows (float32, untrained weights perturbed by 0.05)"
    case 5000 8
    case 100000 8
    case 5000 32
