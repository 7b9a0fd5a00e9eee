/// Timing for the bench sections: time-based warm-up (so tiered JIT and PGO settle before measuring),
/// then the median of several timed batches, and one `name value unit` line per result.
module Timing

open System
open System.Diagnostics
open System.Globalization
open System.Runtime.Intrinsics

/// Seconds spent calling the action before any timing, long enough for tier-1 code to be installed.
let warmupSeconds = 1.0

/// Timed batches per measurement; the median is reported.
let repetitions = 15

/// Seconds one timed batch aims to last, so that timer resolution is irrelevant.
let batchSeconds = 0.05

/// Median seconds per call of `action`, after a warm-up of `warmupSeconds`.
let measure (action: unit -> unit) : float =
    let clock = Stopwatch.StartNew()
    let mutable calls = 0
    while clock.Elapsed.TotalSeconds < warmupSeconds do
        action ()
        calls <- calls + 1
    let perCall = clock.Elapsed.TotalSeconds / float calls
    let batch = max 1 (int (batchSeconds / perCall))
    let times =
        Array.init repetitions (fun _ ->
            let start = Stopwatch.GetTimestamp()
            for _ in 1..batch do
                action ()
            Stopwatch.GetElapsedTime(start).TotalSeconds / float batch)
    Array.sortInPlace times
    times[repetitions / 2]

// Three significant digits without an exponent: 47.3, 4.73, 0.0473, 4730.
let private format (value: float) =
    let magnitude = if value = 0.0 || not (Double.IsFinite value) then 0 else int (floor (log10 (abs value)))
    let decimals = Math.Clamp(2 - magnitude, 0, 6)
    value.ToString("F" + string decimals, CultureInfo.InvariantCulture)

/// Prints one result line, `name value unit`, e.g. `gemm.openblas.512x256x256 47.3 GFLOP/s`.
let report (name: string) (value: float) (unit: string) = printfn "%s %s %s" name (format value) unit

/// Prints a comment line (starting with `#`) that result parsers skip.
let comment (text: string) = printfn "# %s" text

/// Prints the JIT and SIMD settings that decide the numbers, as `#` lines.
let printJitSettings () =
    let env name = Environment.GetEnvironmentVariable name |> Option.ofObj |> Option.defaultValue "(unset)"
    comment $"runtime {Environment.Version}, {Environment.ProcessorCount} cores"
    for name in [ "DOTNET_TieredCompilation"; "DOTNET_TieredPGO" ] do
        comment $"{name}={env name}"
    comment $"Vector256.IsHardwareAccelerated={Vector256.IsHardwareAccelerated}"
    comment $"Vector512.IsHardwareAccelerated={Vector512.IsHardwareAccelerated}"
