/// The two-moons training step of document 003 (2 affine couplings [1, 64, 64, 2], swaps, Adam 5e-4
/// with weight decay 1e-5, batch 512) and its 8 × 256, batch-4096 version on one fixed batch, in steps per second of wall time and per
/// second of the calling thread's CPU time. The second moves less than the first when other
/// processes share the cores (not nothing: they share caches), so it tracks the step's own cost on a
/// busy machine.
module StepBench

open System.Diagnostics
open System.Runtime.InteropServices

[<Struct; StructLayout(LayoutKind.Sequential)>]
type private TimeSpec =
    val mutable Seconds: int64
    val mutable Nanoseconds: int64

[<DllImport("libc", SetLastError = true)>]
extern int private clock_gettime(int clock, TimeSpec& time)

// CLOCK_THREAD_CPUTIME_ID
let private threadCpuSeconds () =
    let mutable t = TimeSpec()
    if clock_gettime(3, &t) <> 0 then nan else float t.Seconds + float t.Nanoseconds * 1e-9

// One configuration: PeerBench's fixed-batch fit (normflows' two-moons RealNVP), after a warm-up.
let private measure (blocks: int) (hidden: int) (batch: int) (steps: int) =
    let fit (n: int) = PeerBench.twoMoons blocks hidden batch false n |> ignore
    fit (max 3 (steps / 6))
    let cpu = threadCpuSeconds ()
    let clock = Stopwatch.StartNew()
    fit steps
    let wall = clock.Elapsed.TotalSeconds
    let used = threadCpuSeconds () - cpu
    let name = $"step.two_moons.{blocks}x{hidden}.batch{batch}.fixed_batch"
    Timing.report $"{name}.wall" (float steps / wall) "it/s"
    // GEMM threads work beside the calling thread on big products, so this one is a lower bound there
    Timing.report $"{name}.thread_cpu" (float steps / used) "it/s"

let run () =
    measure 2 64 512 3000
    measure 8 256 4096 24
