/// Family laws of the image bijectors and Glow on [n; C; H; W] images: squeeze as an index map,
/// round trips and log-dets against the autodiff Jacobian of the flattened map (MathNet LU), the
/// 1×1 convolution's log-det against H·W·log|det W| of its matrix, ActNorm's per-channel data
/// initialisation (also inside factored-out levels), dequantisation and bits per dimension.
module Flows.Properties.Bijectors.GlowTests

open System
open Xunit
open MathNet.Numerics.LinearAlgebra
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Models
open Flows.Tensors
open Flows.Training
open Flows.Laws
open Flows.Properties.Support

let private f64 = Dtype.Float64

[<Fact>]
let ``squeeze moves pixel (2y + dy, 2x + dx) of channel c to channel 4c + 2dy + dx and unsqueeze undoes it`` () =
    let n, c, h, w = 2, 3, 4, 6
    let x = (Generator 1UL).normal([| n; c; h; w |], dtype = f64)
    let values = x.toArray64()
    let expected =
        [| for i in 0 .. n - 1 do
               for ch in 0 .. 4 * c - 1 do
                   for y in 0 .. h / 2 - 1 do
                       for xx in 0 .. w / 2 - 1 do
                           let source, dy, dx = ch / 4, (ch % 4) / 2, ch % 2
                           yield values[((i * c + source) * h + 2 * y + dy) * w + 2 * xx + dx] |]
    let squeezed = Squeeze.squeeze x
    Close.values "squeeze" Tolerance.float64 [| n; 4 * c; h / 2; w / 2 |] expected squeezed
    Close.tensors "unsqueeze(squeeze x)" Tolerance.float64 x (Squeeze.unsqueeze squeezed)

/// Image bijectors away from their initial parameters (σ(raw + 2) scales included), by image shape.
let private instances () : (string * Bijector) list =
    let gen = Generator 21UL
    let perturbed (b: Bijector) = Entry.perturb gen 0.3 b
    let sigmoid image = ChannelCoupling.create gen f64 { Image = image; Hidden = 4; ScaleMap = Coupling.ScaleMap.Sigmoid; ContextDim = 0 }
    let kept = FactorOut.keptShape [| 4; 2; 2 |]
    let glow = { Glow.Config.defaults 1 4 4 with StepsPerLevel = 2; Hidden = 4 }
    [ "squeeze [2; 4; 4]", Squeeze.create [| 2; 4; 4 |]
      "channel actnorm [4; 2; 2]", perturbed (Pixelwise.actNorm f64 [| 4; 2; 2 |])
      "1x1 conv [3; 2; 2]", perturbed (Pixelwise.invertibleConv f64 [| 3; 2; 2 |])
      "sigmoid coupling [2; 4; 4]", perturbed (sigmoid [| 2; 4; 4 |])
      "sigmoid coupling [3; 2; 3]", perturbed (sigmoid [| 3; 2; 3 |])
      "factor-out [4; 2; 2]", perturbed (FactorOut.create [| 4; 2; 2 |] (Pixelwise.invertibleConv f64 kept))
      "glow [1; 4; 4], 2 levels", perturbed (Compose.chain "glow" (Glow.layers gen f64 glow)) ]

let private flatten (t: Tensor) = t.reshape [| t.shape[0]; -1 |]

[<Fact>]
let ``image bijectors round-trip and their log-dets equal log|det| of the flattened autodiff Jacobian`` () =
    for name, b in instances () do
        let dataSide = b.Event
        // the base side of a squeeze is the squeezed shape; every other map keeps its shape
        let baseSide = if b.Name = "squeeze" then Squeeze.squeezedShape dataSide else dataSide
        let batch (shape: int[]) = Array.append [| 3 |] shape
        let x = (Generator 4UL).normal(batch baseSide, 0.0, 1.0, f64)
        let y, logDet = Bijector.forward Context.none x b
        let back, inverseLogDet = Bijector.inverse Context.none y b
        Close.tensors $"{name}: inverse(forward x)" { Abs = 1e-9; Rel = 1e-8 } x back
        Close.tensors $"{name}: inverse log-det" { Abs = 1e-9; Rel = 1e-8 } (-logDet) inverseLogDet
        let map (rows: Tensor) = flatten (fst (Bijector.forward Context.none (rows.reshape (batch baseSide)) b))
        let expected = Reference.logAbsDetJacobian map (flatten x)
        Close.arrays $"{name}: forward log-det" { Abs = 1e-8; Rel = 1e-7 } expected (logDet.toArray64())

[<Fact>]
let ``the 1x1 convolution's log-det is H·W·log|det W| of the matrix it applies at each pixel`` () =
    let c, h, w = 3, 2, 5
    let gen = Generator 8UL
    let b = Pixelwise.invertibleConv f64 [| c; h; w |] |> Entry.perturb gen 0.5
    // W's columns and the bias from images that are constant over the pixels
    let at (v: float[]) = fst (Bijector.forward Context.none (Tensor.ofArray(v, [| 1; c; 1; 1 |]).expand [| 1; c; h; w |]) b)
    let pixel (t: Tensor) = (t.narrow(2, 1, 1).narrow(3, 3, 1)).toArray64()
    let bias = pixel (at (Array.zeroCreate c))
    let matrix = Matrix<float>.Build.Dense(c, c, fun i j -> (pixel (at (Array.init c (fun k -> if k = j then 1.0 else 0.0))))[i] - bias[i])
    let expected = float (h * w) * log (abs (matrix.Determinant()))
    let x = gen.normal([| 2; c; h; w |], dtype = f64)
    let y, logDet = Bijector.forward Context.none x b
    Close.values "1x1 conv log-det" { Abs = 1e-9; Rel = 1e-9 } [| 2 |] [| expected; expected |] logDet
    // and the map is W·x + b at every pixel
    let xs, ys = x.toArray64(), y.toArray64()
    for i in 0 .. 1 do
        for p in 0 .. h * w - 1 do
            for o in 0 .. c - 1 do
                let value = bias[o] + Seq.sum (seq { for k in 0 .. c - 1 -> matrix[o, k] * xs[(i * c + k) * h * w + p] })
                Close.scalar $"1x1 conv at image {i}, pixel {p}, channel {o}" Tolerance.float64 value ys[(i * c + o) * h * w + p]

/// Per-channel mean and variance over images and pixels, in plain arrays.
let private channelMoments (x: Tensor) =
    let n, c, hw = x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
    let v = x.toArray64()
    Array.init c (fun ch ->
        let values = [| for i in 0 .. n - 1 do for p in 0 .. hw - 1 -> v[(i * c + ch) * hw + p] |]
        let mean = Array.average values
        mean, (values |> Array.averageBy (fun a -> (a - mean) ** 2.0)))

[<Fact>]
let ``channel ActNorm's first batch leaves its inverse with zero mean and unit variance per channel`` () =
    let gen = Generator 9UL
    let data = gen.normal([| 16; 3; 4; 4 |], dtype = f64) * Tensor.ofArray([| 0.5; 2.0; 7.0 |], [| 1; 3; 1; 1 |]) + 3.0
    let flow = Flow.create (Distribution.standardNormal [| 3; 4; 4 |] f64) [ Pixelwise.actNorm f64 [| 3; 4; 4 |] ]
    let observed = Flow.observe Context.training data flow
    let z, _ = Flow.inverse Context.none data observed
    for ch, (mean, variance) in Array.indexed (channelMoments z) do
        Close.scalar $"channel {ch} mean" { Abs = 1e-9; Rel = 0.0 } 0.0 mean
        Close.scalar $"channel {ch} variance" { Abs = 1e-5; Rel = 0.0 } 1.0 variance
    // a second batch changes nothing
    let again = Flow.observe Context.training (data * 5.0) observed
    Close.tensors "after a second batch" Tolerance.float64 z (fst (Flow.inverse Context.none data again))

[<Fact>]
let ``observing a batch initialises every ActNorm of a Glow, inside factored-out levels too`` () =
    let config = { Glow.Config.defaults 1 8 8 with Levels = 3; StepsPerLevel = 1; Hidden = 4 }
    let flow = Glow.create (Generator 2UL) f64 config
    let flags (f: Flow) =
        f.Layers |> List.collect (fun b -> List.ofArray (Array.zip b.Buffers.Names b.Buffers.Values)) |> List.filter (fun (n, _) -> n.EndsWith "initialised")
    // one ActNorm per step and level
    Assert.Equal(3, (flags flow).Length)
    let data = ToyImages.barsAndBlobs (Generator 3UL) 32 8 8 8 |> Images.dequantise (Generator 4UL) 8 f64
    let observed = Flow.observe Context.training data flow
    for name, flag in flags observed do
        Close.scalar $"{name}" Tolerance.float64 1.0 (flag.toScalar())
    // the data-side ActNorm sees the squeezed images and whitens them per channel
    let actNorm = observed.Layers |> List.find (fun b -> b.Name = "channel-actnorm")
    let z, _ = Bijector.inverse Context.none (Squeeze.squeeze data) actNorm
    for ch, (mean, variance) in Array.indexed (channelMoments z) do
        Close.scalar $"first ActNorm, channel {ch} mean" { Abs = 1e-9; Rel = 0.0 } 0.0 mean
        Close.scalar $"first ActNorm, channel {ch} variance" { Abs = 1e-5; Rel = 0.0 } 1.0 variance

[<Fact>]
let ``initialising a Glow once gives the observed flow's densities without observation hooks`` () =
    let flow = Glow.create (Generator 5UL) f64 { Glow.Config.defaults 1 8 8 with StepsPerLevel = 1; Hidden = 4 }
    let data = ToyImages.barsAndBlobs (Generator 6UL) 32 8 8 8 |> Images.dequantise (Generator 7UL) 8 f64
    let observed = Flow.observe Context.training data flow
    let initialised = Flow.initialise Context.training data flow
    Assert.True(initialised.Layers |> List.forall (fun b -> b.Observe.IsNone), "no layer should observe after initialisation")
    let other = ToyImages.barsAndBlobs (Generator 8UL) 16 8 8 8 |> Images.dequantise (Generator 9UL) 8 f64
    Close.tensors "log q after initialisation" Tolerance.float64 (Flow.logProb Context.none other observed) (Flow.logProb Context.none other initialised)
    // observing again is a no-op now, where the uninitialised flow would change
    Assert.Same(initialised, Flow.observe Context.training other initialised)
    Assert.False((Flow.logProb Context.none other flow - Flow.logProb Context.none other initialised).abs().max().toScalar() < 1e-6, "initialisation should change the flow")

[<Fact>]
let ``Glow's sigmoid scale contracts data to base, so no coupling can blow a pixel up towards the base`` () =
    let gen = Generator 31UL
    let image = [| 4; 3; 3 |]
    for trial in 1 .. 5 do
        let b = ChannelCoupling.create gen f64 { Image = image; Hidden = 4; ScaleMap = Coupling.ScaleMap.Sigmoid; ContextDim = 0 } |> Entry.perturb gen 3.0
        let x = gen.normal([| 8; 4; 3; 3 |], dtype = f64) * 10.0
        let _, logDet = Bijector.inverse Context.none x b
        Assert.True(logDet.toArray64() |> Array.forall (fun v -> v < 0.0), $"trial {trial}: data -> base log-dets must be negative")

[<Fact>]
let ``a coupling saved with the earlier sigmoid direction is refused, not misread`` () =
    let b = ChannelCoupling.create (Generator 1UL) f64 { Image = [| 2; 2; 2 |]; Hidden = 4; ScaleMap = Coupling.ScaleMap.Sigmoid; ContextDim = 0 }
    Assert.Equal("sigmoid-contracting", Settings.text "scale" b.Settings)
    let old = b.Settings |> Map.add "scale" (Setting.Text "sigmoid")
    let error = Assert.Throws<ArgumentException>(fun () -> Catalogue.rebuild f64 b.Name old |> ignore)
    Assert.Contains("train the model again", error.Message)
    // the current name rebuilds the same map (the catalogue's form takes flattened image rows)
    let rebuilt = { Catalogue.rebuild f64 b.Name b.Settings with Params = b.Params }
    let x = (Generator 2UL).normal([| 3; 2; 2; 2 |], dtype = f64)
    Close.tensors "rebuilt coupling" Tolerance.float64 ((fst (Bijector.inverse Context.none x b)).reshape [| 3; 8 |]) (fst (Bijector.inverse Context.none (x.reshape [| 3; 8 |]) rebuilt))

[<Fact>]
let ``Glow refuses image sizes that the levels cannot squeeze`` () =
    let error = Assert.Throws<ArgumentException>(fun () -> Glow.create (Generator 1UL) f64 { Glow.Config.defaults 1 12 8 with Levels = 3 } |> ignore)
    Assert.Equal("Levels", error.ParamName)
    Assert.Contains("12 x 8", error.Message)

[<Fact>]
let ``images hold integer levels, dequantised data quantises back, and a uniform model scores log2 levels bits per dimension`` () =
    let levels = 6
    let k = ToyImages.barsAndBlobs (Generator 5UL) 50 levels 8 8
    let values = k.toArray64()
    Assert.True(values |> Array.forall (fun v -> v = Math.Round v && v >= 0.0 && v <= float (levels - 1)), "levels must be integers in range")
    Assert.True(values |> Array.exists (fun v -> v = float (levels - 1)), "the brightest level should occur")
    Close.tensors "same seed, same images" Tolerance.float64 k (ToyImages.barsAndBlobs (Generator 5UL) 50 levels 8 8)
    let x = Images.dequantise (Generator 6UL) levels f64 k
    Close.tensors "quantise(dequantise k)" Tolerance.float64 k (Images.quantise levels x)
    let uniform = Flow.create (Distribution.uniformBox [| 1; 8; 8 |] -0.5 0.5 f64) []
    let nll = -((Flow.logProb Context.none x uniform).mean().toScalar())
    Close.scalar "uniform model bits/dim" Tolerance.float64 (Math.Log2(float levels)) (Objectives.dequantisedBitsPerDim levels 64 nll)

[<Fact>]
let ``a briefly trained Glow beats the uniform model's bits per dimension on held-out images`` () =
    let levels = 8
    let train = ToyImages.barsAndBlobs (Generator 10UL) 512 levels 4 4
    let heldOut = ToyImages.barsAndBlobs (Generator 11UL) 256 levels 4 4 |> Images.dequantise (Generator 12UL) levels f64
    let flow = Glow.create (Generator 13UL) f64 { Glow.Config.defaults 1 4 4 with Levels = 1; StepsPerLevel = 2; Hidden = 8 }
    let source = DataSource.Sampler(fun g n -> Images.dequantise g levels f64 (train.narrow(0, g.integers([| 1 |], 0, 512 - n).toArrayInt()[0], n)))
    let trained, _ = Train.fit { TrainOptions.defaults with Steps = 120; BatchSize = 64; LearningRate = 3e-3 } (Objective.ForwardKl source) flow |> Train.result
    let bits = Objectives.dequantisedBitsPerDim levels 16 (-((Flow.logProb Context.none heldOut trained).mean().toScalar()))
    Assert.True(bits < Math.Log2(float levels) - 0.5, $"held-out bits/dim {bits} should beat the uniform model's {Math.Log2(float levels)} by half a bit")
