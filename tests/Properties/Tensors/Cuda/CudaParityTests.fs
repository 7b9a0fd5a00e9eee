/// The GPU parity suite (bench/CudaCheck/Parity.fs): every op with its gradients and every catalogue
/// bijector, CPU against cuda:0, within Parity.tolerance. Skipped visibly without a device; the
/// harness itself is checked here on any machine by running it CPU against CPU.
module Flows.Properties.Tensors.Cuda.CudaParityTests

open System
open Xunit
open Flows.Tensors
open Flows.CudaCheck

let private assertAllPass (outcomes: Parity.Outcome list) =
    let failed = outcomes |> List.filter (fun o -> not o.Passed)
    if not failed.IsEmpty then
        failwith (String.Join("\n", failed |> List.map (fun o -> $"{o.Name}: {o.Detail}")))

[<Fact>]
let ``The parity harness runs every op case and a bijector case CPU against CPU with zero difference`` () =
    // the whole catalogue takes seconds on the CPU: the GPU run covers it, this checks the harness
    let outcomes = (Parity.opCases @ List.truncate 1 Parity.bijectorCases) |> List.map (fun case -> case Device.Cpu)
    assertAllPass outcomes
    for o in outcomes do Assert.Equal(0.0, o.MaxError)

[<Fact>]
let ``The parity harness reports a difference beyond the tolerance`` () =
    let a = Tensor.ofArray [| 1.0f; 2.0f |]
    Assert.True((Parity.compare "same" [ a ] [ a * 1.0000001 ]).Passed)
    let o = Parity.compare "off" [ a ] [ a + 0.01 ]
    Assert.False o.Passed
    Assert.Contains("[0]", o.Detail)

[<GpuFact>]
let ``Every op and every catalogue bijector on cuda:0 matches the CPU within the float32 tolerance`` () =
    assertAllPass (Parity.runAll(Device.Cuda 0))
