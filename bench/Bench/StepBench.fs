/// The two-moons training step of document 003 (2 affine couplings [1, 64, 64, 2], swaps, Adam 5e-4
/// with weight decay 1e-5, batch 512) on one fixed batch, in steps per second of wall time and per
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

// PeerBench's fixed-batch fit: normflows' configuration, 2 blocks of [1, 64, 64, 2], batch 512
let private fit (steps: int) = PeerBench.twoMoons 2 64 512 false steps |> ignore

let run () =
    fit 500
    let steps = 3000
    let cpu = threadCpuSeconds ()
    let clock = Stopwatch.StartNew()
    fit steps
    let wall = clock.Elapsed.TotalSeconds
    let used = threadCpuSeconds () - cpu
    Timing.report "step.two_moons.2x64.batch512.fixed_batch.wall" (float steps / wall) "it/s"
    Timing.report "step.two_moons.2x64.batch512.fixed_batch.thread_cpu" (float steps / used) "it/s"
