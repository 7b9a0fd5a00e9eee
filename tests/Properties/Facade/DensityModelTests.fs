/// The C# façade as a caller uses it: arrays in, arrays out, clear errors for bad data.
module Flows.Properties.Facade.DensityModelTests

open System
open Xunit
open Flows.CSharp
open Flows.Data
open Flows.Tensors

let private moons (n: int) (seed: uint64) =
    let t = Toy.twoMoons (Generator seed) n Dtype.Float32
    let flat = t.toArray32()
    Array2D.init n 2 (fun i j -> flat[2 * i + j])

[<Fact>]
let ``fitting raises the held-out log-density of the data`` () =
    let model = DensityModel.CreateRealNvp(2, layers = 4, hidden = 32, seed = 1UL)
    let heldOut = moons 2000 2UL
    let before = model.LogProb heldOut |> Array.averageBy float
    let fitted = model.Fit(moons 4000 3UL, FitOptions(Steps = 400, BatchSize = 256, LearningRate = 3e-3, Seed = 4UL))
    let after = fitted.LogProb heldOut |> Array.averageBy float
    // the untrained model is a standard normal: about −3.6 nats on the moons; the exact
    // density's mean log-density is −1.571, so a fitted flow must land well above −3
    Assert.True(after > before + 1.0 && after > -2.6, $"mean log-density {before} before, {after} after fitting")

[<Fact>]
let ``samples have the model's dimension and the same seed gives the same samples`` () =
    let model = DensityModel.CreateRealNvp(3, layers = 2, hidden = 8, seed = 5UL)
    let a, b = model.Sample(50, 9UL), model.Sample(50, 9UL)
    Assert.Equal(50, Array2D.length1 a)
    Assert.Equal(3, Array2D.length2 a)
    Assert.Equal<float32 seq>(Seq.cast<float32> a, Seq.cast<float32> b)

[<Fact>]
let ``bad data is refused with the row and column named`` () =
    let model = DensityModel.CreateRealNvp(2, layers = 2, hidden = 8)
    let withNaN = Array2D.init 4 2 (fun i j -> if i = 2 && j = 1 then Single.NaN else 0.5f)
    let error = Assert.Throws<ArgumentException>(fun () -> model.LogProb withNaN |> ignore)
    Assert.Contains("row 2, column 1", error.Message)
    Assert.Equal("data", error.ParamName)
    let wrongWidth = Assert.Throws<ArgumentException>(fun () -> model.LogProb(Array2D.zeroCreate 3 5) |> ignore)
    Assert.Contains("expected 2 columns, got 5", wrongWidth.Message)
    Assert.Throws<ArgumentException>(fun () -> model.Fit(Array2D.zeroCreate 0 2) |> ignore) |> ignore
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> DensityModel.CreateRealNvp(1) |> ignore) |> ignore
