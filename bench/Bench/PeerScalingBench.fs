/// Issue 18's `peer-scaling` section: the fixed-batch two-moons step (2 blocks, PeerBench's RealNVP) for
/// batch 128 … 16,384 × hidden 32 … 512, ours beside TorchSharp with 2 threads, as `name value unit`
/// lines and a `#` table of both rates and their ratio, so the crossover (if any) is visible. Each
/// side times about `seconds` of steps, so the whole section takes a few minutes at every size.
module PeerScalingBench

open System
open System.Globalization

let private batches = [ 128; 512; 2048; 8192; 16384 ]
let private hiddens = [ 32; 128; 512 ]
let private threads = 2
let private seconds = 1.5

/// The section.
let run () =
    let dll = PeerBench.peerProgram ()
    let cells =
        dict [ for batch in batches do
                 for hidden in hiddens do
                     let name = $"peer.scaling.2x{hidden}.batch{batch}.fixed_batch"
                     let mine = PeerBench.rateFor seconds (PeerBench.twoMoons 2 hidden batch false)
                     let theirs =
                         PeerBench.peer dll [ "--blocks"; "2"; "--hidden"; string hidden; "--batch"; string batch; "--seconds"; string seconds
                                              "--threads"; string threads; "--fixed-only" ] "torchsharp.fixed_batch"
                     PeerBench.compare name mine [ threads, theirs ]
                     (batch, hidden), (mine, theirs) ]
    let show (v: float) = v.ToString((if v < 10.0 then "F2" else "F0"), CultureInfo.InvariantCulture)
    let cell (mine, theirs: float option) =
        match theirs with
        | Some t ->
            let ratio = (mine / t).ToString("F2", CultureInfo.InvariantCulture)
            $"{show mine,7} / {show t,7} = {ratio,6}x"
        | None -> $"{show mine,7} /       ?          "
    Timing.comment $"two-moons step it/s, ours / TorchSharp ({threads} threads) = ratio; 2 blocks, fixed batch"
    Timing.comment ("batch  | " + String.Join(" | ", [ for h in hiddens -> (sprintf "h = %d" h).PadLeft 27 ]))
    for batch in batches do
        Timing.comment ($"{batch,6} | " + String.Join(" | ", [ for h in hiddens -> $"{cell cells[(batch, h)],27}" ]))
