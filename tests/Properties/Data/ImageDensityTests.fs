/// The image-density pipeline of the Fashion-MNIST example: bits/dim of a fixed Gaussian model
/// against its closed form in expectation over the dequantisation noise and against the exact
/// discrete likelihood (normal CDF differences per cell); Glow and RealNVP on 28×28 generated images
/// (training lowers held-out bits/dim, samples are grey levels of the right shape); bad arguments.
module Flows.Properties.Data.ImageDensityTests

open System
open Xunit
open MathNet.Numerics.Distributions
open Flows
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Models
open Flows.Tensors
open Flows.Training
open Flows.Properties.Support

let private f64 = Dtype.Float64

[<Fact>]
let ``a fixed Gaussian's bits per dimension match the closed form and bound the exact discrete likelihood`` () =
    let levels, n, event = 256, 300, [| 1; 4; 4 |]
    let d = Shape.numel event
    let mu, sigma = 0.05, 0.3
    let k = (Generator 1UL).integers(Array.append [| n |] event, 0, levels).cast f64
    let model =
        let normal = Distribution.diagonalNormal event f64
        let full (v: float) = Tensor.full(event, v, f64)
        Flow.create { normal with Params = Params.ofList [ "loc", full mu; "logScale", full (log sigma) ] } []
    // 7 does not divide 300: the last chunk is short
    let bits = ImageDensity.bitsPerDim levels 7 model (Images.dequantise (Generator 2UL) levels f64 k)
    // x = (k + u)/L − ½ = c + v with c the cell centre and v ~ U(−h, h), h = 1/(2L):
    // E[(x − μ)²] = a² + h²/3 and Var[(x − μ)²] = 4a²h²/3 + 4h⁴/45 for a = c − μ
    let h = 0.5 / float levels
    let ks = k.toArray64()
    let centred = ks |> Array.map (fun kv -> (kv + 0.5) / float levels - 0.5 - mu)
    let nats (expectedSquare: float) = 0.5 * log (2.0 * Math.PI * sigma * sigma) + expectedSquare / (2.0 * sigma * sigma) + log (float levels)
    let toBits (total: float) = total / (float (n * d) * log 2.0)
    let expected = centred |> Array.sumBy (fun a -> nats (a * a + h * h / 3.0)) |> toBits
    let sd = sqrt (centred |> Array.sumBy (fun a -> (4.0 * a * a * h * h / 3.0 + 4.0 * h ** 4.0 / 45.0) / (2.0 * sigma * sigma) ** 2.0)) |> toBits
    Assert.True(abs (bits - expected) < 5.0 * sd, $"bits/dim {bits} should be within 5 standard errors ({sd}) of the closed form {expected}")
    // the model's mass on each cell, exactly: −log2 P(k) per dimension never exceeds the bound
    let exact =
        ks |> Array.sumBy (fun kv ->
            let low = kv / float levels - 0.5
            -log (Normal.CDF(mu, sigma, low + 1.0 / float levels) - Normal.CDF(mu, sigma, low)))
        |> toBits
    Assert.True(exact <= expected, $"the exact discrete {exact} bits/dim must not exceed the dequantised bound {expected}")
    Assert.True(expected - exact < 1e-3, $"the bound {expected} should be tight for σ ≫ 1/L, exact {exact}")

/// Glow, or RealNVP's pieces in it, for 28×28 single-channel images at two levels of one small step.
let private smallModel (realNvp: bool) (seed: uint64) =
    let config = { Glow.Config.defaults 1 28 28 with StepsPerLevel = 1; Hidden = 8 }
    Glow.create (Generator seed) Dtype.Float32 (if realNvp then Glow.Config.realNvp config else config)

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a few training steps on 28x28 images lower held-out bits per dimension and samples are grey levels`` (realNvp: bool) =
    let levels = 256
    let train = ToyImages.barsAndBlobs (Generator 10UL) 256 levels 28 28
    let heldOut = ToyImages.barsAndBlobs (Generator 11UL) 64 levels 28 28 |> Images.dequantise (Generator 12UL) levels Dtype.Float32
    let first = ImageDensity.batch levels Dtype.Float32 Device.Cpu train (Generator 13UL) 64
    Assert.Equal<int[]>([| 64; 1; 28; 28 |], first.shape)
    let flow = smallModel realNvp 14UL |> Flow.initialise Context.training first
    let before = ImageDensity.bitsPerDim levels 25 flow heldOut
    let options = { TrainOptions.defaults with Steps = 12; BatchSize = 16; LearningRate = 3e-3; Schedule = Schedule.Warmup 3; Seed = 15UL }
    let trained, report = Train.fit options (Objective.ForwardKl(ImageDensity.source levels Dtype.Float32 Device.Cpu train)) flow |> Train.result
    Assert.Equal(StopReason.Completed, report.Stop)
    let after = ImageDensity.bitsPerDim levels 25 trained heldOut
    Assert.True(after < before - 0.1, $"held-out bits/dim should drop by 0.1 in 12 steps: {before} -> {after}")
    let samples = ImageDensity.sample (Generator 16UL) levels 0.7 6 trained
    Assert.Equal<int[]>([| 6; 1; 28; 28 |], samples.shape)
    let values = samples.toArray64()
    Assert.True(values |> Array.forall (fun v -> v = Math.Round v && v >= 0.0 && v <= float (levels - 1)), "samples must be grey levels 0 .. 255")
    Assert.True(Array.distinct(values).Length > 10, "samples should not be constant")

[<Fact>]
let ``the image pipeline names its bad arguments`` () =
    let flow = smallModel false 20UL
    let images = ToyImages.barsAndBlobs (Generator 21UL) 4 256 28 28
    let x = Images.dequantise (Generator 22UL) 256 Dtype.Float32 images
    let param (f: unit -> 'T) = (Assert.Throws<ArgumentException>(fun () -> f () |> ignore)).ParamName
    Assert.Equal("chunk", param (fun () -> ImageDensity.bitsPerDim 256 0 flow x))
    Assert.Equal("x", param (fun () -> ImageDensity.bitsPerDim 256 2 flow (x.reshape [| 4; 784 |])))
    Assert.Equal("images", param (fun () -> ImageDensity.batch 256 Dtype.Float32 Device.Cpu (images.reshape [| 4; 28; 28 |]) (Generator 1UL) 2))
    Assert.Equal("n", param (fun () -> ImageDensity.batch 256 Dtype.Float32 Device.Cpu images (Generator 1UL) 0))
    Assert.Equal("temperature", param (fun () -> ImageDensity.sample (Generator 1UL) 256 0.0 2 flow))
    Assert.Equal("flow", param (fun () -> ImageDensity.sample (Generator 1UL) 256 0.7 2 (Flow.create (Distribution.diagonalNormal [| 1; 28; 28 |] Dtype.Float32) flow.Layers)))
