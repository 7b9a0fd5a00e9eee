/// CudaCheck: runs the GPU parity suite and prints training-step timings, on a machine with a CUDA
/// device and no .NET (publish self-contained: dotnet publish bench/CudaCheck -c Release -r linux-x64).
///   CudaCheck [parity] [bench] [--device N] [--large-batch B] [--cpu-baseline]
module Flows.CudaCheck.Program

open System
open Flows.Tensors

[<EntryPoint>]
let main argv =
    let args = List.ofArray argv
    let flag name = List.contains name args
    let value name fallback =
        match List.tryFindIndex ((=) name) args with
        | Some i when i + 1 < args.Length -> int args[i + 1]
        | _ -> fallback
    // --device cpu runs the suite CPU against CPU: a check of the harness itself
    let device =
        match List.tryFindIndex ((=) "--device") args with
        | Some i when i + 1 < args.Length && args[i + 1] = "cpu" -> Device.Cpu
        | _ -> Device.Cuda(value "--device" 0)
    let doParity = flag "parity" || not (flag "bench")
    let doBench = flag "bench" || not (flag "parity")
    let mutable failed = 0
    // a missing driver or library is one clear message, not one per case
    try
        Tensor.zeros([| 1 |], device = device).toArray32() |> ignore
    with e ->
        eprintfn $"{device} is not usable: {e.Message}"
        exit 2
    if doParity then
        printfn $"parity: CPU vs {device}, float32 tolerance Abs {Parity.tolerance.Abs} + Rel {Parity.tolerance.Rel}"
        for o in Parity.runAll device do
            let mark = if o.Passed then "ok  " else "FAIL"
            printfn $"{mark} {o.Name,-45} max |gpu-cpu| {o.MaxError:E2} {o.Detail}"
            if not o.Passed then failed <- failed + 1
        printfn $"parity: {failed} failed"
    if doBench then
        let largeBatch = value "--large-batch" 65536
        let report name (seconds: float) = printfn $"{name} {seconds * 1e3:F3} ms/step ({1.0 / seconds:F1} steps/s)"
        report $"cuda.two_moons_step[{device}]" (CudaBench.twoMoons device)
        report $"cuda.rqnsf8_h512_b{largeBatch}_d16_step[{device}]" (CudaBench.large device largeBatch)
        let cnf = CnfBench.measure device
        report $"cuda.{CnfBench.name}[{device}]" cnf.SecondsPerIteration
        printfn $"cuda.{CnfBench.name}.nfe[{device}] forward {cnf.NfeForward:F1} backward {cnf.NfeBackward:F1}"
        if flag "--cpu-baseline" then
            report "cpu.two_moons_step" (CudaBench.twoMoons Device.Cpu)
            report "cpu.rqnsf8_h512_b4096_d16_step" (CudaBench.large Device.Cpu 4096)
            report $"cpu.{CnfBench.name}" (CnfBench.measure Device.Cpu).SecondsPerIteration
    if failed = 0 then 0 else 1
