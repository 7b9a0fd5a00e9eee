/// The two-moons training step of document 003 (2 affine couplings [1, 64, 64, 2], swaps, Adam 5e-4
/// with weight decay 1e-5, batch 512) on one fixed batch and on fresh samples, and its 8 × 256, batch-4096 version on one fixed batch, in steps per second of wall time and per
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

// One configuration: PeerBench's fit (normflows' two-moons RealNVP) on a fixed batch or on fresh
// samples drawn beside each step ("all-in"), after a warm-up.
let private measure (blocks: int) (hidden: int) (batch: int) (allIn: bool) (steps: int) =
    let fit (n: int) = PeerBench.twoMoons blocks hidden batch allIn n |> ignore
    fit (max 3 (steps / 6))
    let cpu = threadCpuSeconds ()
    let collections = System.GC.CollectionCount 0
    let allocated = System.GC.GetTotalAllocatedBytes false
    let paused = System.GC.GetTotalPauseDuration()
    let clock = Stopwatch.StartNew()
    fit steps
    let wall = clock.Elapsed.TotalSeconds
    let used = threadCpuSeconds () - cpu
    let perStep (total: float) = total / float steps
    let name = $"""step.two_moons.{blocks}x{hidden}.batch{batch}.{if allIn then "all_in" else "fixed_batch"}"""
    Timing.report $"{name}.wall" (float steps / wall) "it/s"
    // GEMM threads work beside the calling thread on big products, so this one is a lower bound there;
    // all-in, wall below it is time spent waiting for the sampler
    Timing.report $"{name}.thread_cpu" (float steps / used) "it/s"
    // Garbage is what a step leaves for the collector: each gen-0 collection stops every thread.
    Timing.report $"{name}.allocated" (perStep (float (System.GC.GetTotalAllocatedBytes false - allocated)) / 1024.0) "KiB/step"
    Timing.report $"{name}.gen0_collections" (1000.0 * perStep (float (System.GC.CollectionCount 0 - collections))) "per 1000 steps"
    Timing.report $"{name}.gc_pause" (1e6 * perStep (System.GC.GetTotalPauseDuration() - paused).TotalSeconds) "us/step"

let run () =
    measure 2 64 512 false 3000
    measure 2 64 512 true 3000
    measure 8 256 4096 false 24
