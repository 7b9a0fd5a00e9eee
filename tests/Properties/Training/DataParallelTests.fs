/// DataParallel's two ways to a step's sums, without MPI: a stand-in for a second rank adds its buffer
/// either to the host array (staging) or to the flattened tensor where the gradients live (device
/// buffers); both must give the gradients, loss and stop flag of the arithmetic done by hand.
module Flows.Properties.Training.DataParallelTests

open Xunit
open Flows.Tensors
open Flows.Training

// What the other rank adds: element i of the step's buffer is 0.001·i, except the last (the stop flag).
let private other (length: int) = Array.init length (fun i -> if i = length - 1 then 1.0 else 0.001 * float i)

let private staged =
    { new ICollective with
        member _.Rank = 0
        member _.Size = 2
        member _.SumInPlace values = Array.iteri (fun i v -> values[i] <- values[i] + v) (other values.Length)
        member _.Broadcast _ = () }

// Takes buffers on the CPU "device" and adds the other rank's there, as a tensor.
let private onDevice =
    { new ICollective with
        member _.Rank = 0
        member _.Size = 2
        member _.SumInPlace _ = failwith "device buffers were expected"
        member _.Broadcast _ = failwith "device buffers were expected"
      interface IDeviceCollective with
        member _.OnDevice _ = true
        member _.Sum values = values + Tensor.ofArray(other values.shape[0], values.shape)
        member _.Broadcast values = values * 0.0 }

[<Fact>]
let ``device buffers and host staging give the same step sums, bit for bit, as summing by hand`` () =
    let g = Generator 4UL
    let grads = [| g.normal [| 3; 4 |]; g.normal [| 5 |]; g.normal([| 2; 2 |], dtype = Dtype.Float64) |]
    let weight, loss = 0.37, 1.25
    let lossA, stopA, (a: Tensor[]) = DataParallel.sumStep staged weight loss false grads
    let lossB, stopB, (b: Tensor[]) = DataParallel.sumStep onDevice weight loss false grads
    let values (ts: Tensor[]) = ts |> Array.collect (fun t -> t.toArray64())
    let flat = values grads
    let added = other (flat.Length + 2)
    for i, (x, y) in Array.indexed (Array.zip (values a) (values b)) do
        // by hand: this rank's weighted value plus the other's, rounded to the gradient's dtype
        let expected = flat[i] * weight + added[i]
        Assert.True((x = y), $"element {i}: staged {x:R}, device {y:R}")
        // the first 12 + 5 elements are float32 gradients
        let rounded = if i < 12 + 5 then float (float32 expected) else expected
        Assert.Equal(rounded, x)
    Assert.Equal(loss * weight + added[flat.Length], lossA)
    Assert.Equal(lossA, lossB)
    Assert.True(stopA && stopB, "the other rank asked to stop")
    Assert.Equal<int[][]>(grads |> Array.map _.shape, b |> Array.map _.shape)
    Assert.Equal<Dtype[]>(grads |> Array.map _.dtype, b |> Array.map _.dtype)
