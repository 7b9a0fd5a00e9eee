/// Bad input is refused at the boundary with an ArgumentException whose message names the op and
/// the shapes or dtypes involved.
module Flows.Properties.Tensors.Errors

open System
open Xunit
open Flows.Tensors

/// Asserts that `call` throws an ArgumentException whose message contains every one of `parts`.
let private refuses (parts: string list) (call: unit -> 'T) =
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> call () |> ignore)
    for part in parts do
        if not (e.Message.Contains part) then
            failwith $"the message \"{e.Message}\" does not mention \"{part}\""

let private f64 (shape: int[]) = Tensor.zeros(shape, Dtype.Float64)

[<Fact>]
let ``Adding shapes that do not broadcast names the op and both shapes`` () =
    refuses [ "Add"; "[2, 3]"; "[4]" ] (fun () -> f64 [| 2; 3 |] + f64 [| 4 |])

[<Fact>]
let ``A matmul with mismatched inner dimensions names the op and both shapes`` () =
    refuses [ "matmul"; "[2, 3]"; "[4, 5]" ] (fun () -> (f64 [| 2; 3 |]).matmul(f64 [| 4; 5 |]))
    refuses [ "matmul"; "[2, 3, 4]"; "[3, 4, 2]" ] (fun () -> (f64 [| 2; 3; 4 |]).matmul(f64 [| 3; 4; 2 |]))

[<Fact>]
let ``Adding float32 to float64 names the op and both dtypes`` () =
    refuses [ "Add"; "float32"; "float64" ] (fun () -> Tensor.zeros [| 3 |] + f64 [| 3 |])

[<Fact>]
let ``A gather index out of range names the op, the index and the shape`` () =
    let index = Tensor.ofArray([| 0; 3; 1 |], [| 1; 3 |])
    refuses [ "gather"; "3"; "[1, 3]"; "[1, 2]" ] (fun () -> (f64 [| 1; 2 |]).gather(1, index))
    refuses [ "gather"; "-1"; "[1, 2]" ] (fun () -> (f64 [| 1; 2 |]).gather(1, Tensor.ofArray([| -1 |], [| 1; 1 |])))

[<Fact>]
let ``searchsorted with NaN in the sorted sequence names the op and the NaN`` () =
    let sorted = Tensor.ofArray([| 0.0; nan; 2.0 |], [| 3 |])
    refuses [ "searchsorted"; "NaN"; "[3]" ] (fun () -> sorted.searchsorted(Tensor.ofArray([| 1.0 |], [| 1 |])))

[<Fact>]
let ``A triangular solve with a zero on the diagonal names the op and says the matrix is singular`` () =
    let a = Tensor.ofArray([| 1.0; 0.0; 5.0; 0.0 |], [| 2; 2 |])
    refuses [ "solveTriangular"; "singular"; "element 1" ] (fun () -> a.solveTriangular(f64 [| 2; 1 |], false))

[<Fact>]
let ``A reshape to a wrong element count names the op, the count and the target shape`` () =
    refuses [ "reshape"; "6"; "[4]" ] (fun () -> (f64 [| 2; 3 |]).reshape [| 4 |])
    refuses [ "reshape"; "6"; "[4, -1]" ] (fun () -> (f64 [| 2; 3 |]).reshape [| 4; -1 |])

[<Fact>]
let ``A VJP cotangent of the wrong shape names both shapes`` () =
    let _, pullback = Ad.vjp (fun x -> x.sum(0)) (f64 [| 2; 3 |])
    refuses [ "vjp"; "[2]"; "[3]" ] (fun () -> pullback (f64 [| 2 |]))

[<Fact>]
let ``flip with a repeated dimension names the op and the dimensions`` () =
    refuses [ "flip"; "[0, 0]"; "[2, 3]" ] (fun () -> (f64 [| 2; 3 |]).flip [| 0; 0 |])
    refuses [ "flip"; "[1, -1]"; "[2, 3]" ] (fun () -> (f64 [| 2; 3 |]).flip [| 1; -1 |])

[<Fact>]
let ``scatterAdd into a shape that differs from the index outside the dimension names both shapes`` () =
    let index = Tensor.ofArray([| 0; 1; 0; 1; 0; 1 |], [| 2; 3 |])
    refuses [ "scatterAdd"; "[4, 2]"; "[2, 3]" ] (fun () -> (f64 [| 2; 3 |]).scatterAdd(0, index, [| 4; 2 |]))
    refuses [ "scatterAdd"; "[4]"; "[2, 3]" ] (fun () -> (f64 [| 2; 3 |]).scatterAdd(0, index, [| 4 |]))

[<Fact>]
let ``tril and triu of a vector name the op and the shape`` () =
    refuses [ "tril"; "[2]" ] (fun () -> (f64 [| 2 |]).tril())
    refuses [ "triu"; "[]" ] (fun () -> (f64 [||]).triu())

[<Fact>]
let ``searchsorted in a scalar names the op and the shape`` () =
    refuses [ "searchsorted"; "[]" ] (fun () -> (f64 [||]).searchsorted(f64 [| 2 |]))

[<Fact>]
let ``A VJP cotangent of the wrong dtype names both dtypes`` () =
    let _, pullback = Ad.vjp (fun x -> x.sum(0)) (f64 [| 2; 3 |])
    refuses [ "vjp"; "float32"; "float64" ] (fun () -> pullback (Tensor.zeros [| 3 |]))

[<Fact>]
let ``Devices parse as ToString writes them, and anything else is refused naming what is expected`` () =
    for d in [ Device.Cpu; Device.Cuda 0; Device.Cuda 3 ] do
        Assert.Equal(d, Device.Parse(string d))
    Assert.Equal(Device.Cuda 0, Device.Parse "CUDA")
    for bad in [ "gpu"; "cuda:"; "cuda:-1"; "cuda:x"; ""; null ] do
        refuses [ "text"; "cpu, cuda or cuda:N" ] (fun () -> Device.Parse bad)
