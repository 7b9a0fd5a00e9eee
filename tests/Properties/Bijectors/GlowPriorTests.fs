/// Family laws of Glow's learned prior on the factored-out channels (FactorOut.Prior.Learned): it
/// starts as RealNVP's fixed N(0, I) prior, round-trips, its log-dets equal log|det| of the
/// flattened autodiff Jacobian (MathNet LU), the density it gives the factored-out half is the
/// closed-form diagonal Gaussian with μ and logs from a hand-written 3×3 convolution of the kept
/// half, and settings saved before the prior existed rebuild the standard prior.
module Flows.Properties.Bijectors.GlowPriorTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Models
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

let private f64 = Dtype.Float64

let private shapes = [ [| 4; 2; 2 |]; [| 3; 2; 3 |]; [| 2; 3; 2 |] ]

/// A non-trivial map on the kept half: channel ActNorm then the 1×1 convolution, perturbed.
let private innerFor (g: Generator) (image: int[]) =
    let kept = FactorOut.keptShape image
    Compose.chain "kept" [ Pixelwise.actNorm f64 kept; Pixelwise.invertibleConv f64 kept ] |> Entry.perturb g 0.3

/// Glow's factor-out with every parameter (inner and prior) moved off its initial value.
let private perturbedLearned (g: Generator) (clamp: float) (image: int[]) =
    FactorOut.withPrior f64 (FactorOut.Prior.Learned clamp) image (innerFor g image) |> Entry.perturb g 0.4

let private flatten (t: Tensor) = t.reshape [| t.shape[0]; -1 |]
let private batchOf (n: int) (image: int[]) = Array.append [| n |] image

[<Fact>]
let ``at initialisation the learned prior maps like the fixed prior around the same inner map`` () =
    Gens.check 6 Gens.seed (fun seed ->
        let g = Draw.generator seed
        for image in shapes do
            let inner = innerFor g image
            let learned = FactorOut.withPrior f64 FactorOut.Prior.glow image inner
            let fixedPrior = FactorOut.create image inner
            let z = Draw.normal g (batchOf 3 image)
            let y, logDet = Bijector.forward Context.none z learned
            let y', logDet' = Bijector.forward Context.none z fixedPrior
            Close.tensors $"{Shape.show image}: forward" Tolerance.float64 y' y
            Close.tensors $"{Shape.show image}: forward log-det" Tolerance.float64 logDet' logDet
            let x, inverseLogDet = Bijector.inverse Context.none z learned
            let x', inverseLogDet' = Bijector.inverse Context.none z fixedPrior
            Close.tensors $"{Shape.show image}: inverse" Tolerance.float64 x' x
            Close.tensors $"{Shape.show image}: inverse log-det" Tolerance.float64 inverseLogDet' inverseLogDet)

[<Fact>]
let ``a Glow with the learned prior starts with the fixed prior's density and adds one 3x3 convolution per split`` () =
    let config = { Glow.Config.defaults 1 8 8 with Levels = 3; StepsPerLevel = 1; Hidden = 4 }
    let learned = Glow.create (Generator 5UL) f64 config
    let fixedPrior = Glow.create (Generator 5UL) f64 { config with Prior = FactorOut.Prior.Standard }
    let x = (Generator 6UL).normal([| 4; 1; 8; 8 |], dtype = f64)
    Close.tensors "log-density at initialisation" Tolerance.float64 (Flow.logProb Context.none x fixedPrior) (Flow.logProb Context.none x learned)
    // splits at [4; 4; 4] and [8; 2; 2] (levels 1 and 2): 2·factored outputs from kept inputs, 3×3, plus biases
    let conv (channels: int) = let kept, factored = channels - channels / 2, channels / 2 in 2 * factored * kept * 9 + 2 * factored
    Assert.Equal((Flow.parameters fixedPrior).NumElements + conv 4 + conv 8, (Flow.parameters learned).NumElements)

[<Fact>]
let ``the learned prior round-trips and its log-dets equal log|det| of the flattened autodiff Jacobian`` () =
    Gens.check 4 Gens.seed (fun seed ->
        let g = Draw.generator seed
        for image in shapes do
            let b = perturbedLearned g 3.0 image
            let z = Draw.normal g (batchOf 3 image)
            let x, logDet = Bijector.forward Context.none z b
            let back, inverseLogDet = Bijector.inverse Context.none x b
            let what = $"{Shape.show image}, seed {seed}"
            Close.tensors $"{what}: inverse(forward z)" { Abs = 1e-9; Rel = 1e-8 } z back
            Close.tensors $"{what}: inverse log-det" { Abs = 1e-9; Rel = 1e-8 } (-logDet) inverseLogDet
            let forwardRows (rows: Tensor) = flatten (fst (Bijector.forward Context.none (rows.reshape (batchOf rows.shape[0] image)) b))
            let inverseRows (rows: Tensor) = flatten (fst (Bijector.inverse Context.none (rows.reshape (batchOf rows.shape[0] image)) b))
            Close.arrays $"{what}: forward log-det" { Abs = 1e-8; Rel = 1e-7 } (Reference.logAbsDetJacobian forwardRows (flatten z)) (logDet.toArray64())
            Close.arrays $"{what}: inverse log-det vs Jacobian" { Abs = 1e-8; Rel = 1e-7 } (Reference.logAbsDetJacobian inverseRows (flatten x)) (inverseLogDet.toArray64()))

/// The prior's raw outputs [n, 2·factored, h, w] by the definition of a zero-padded 3×3
/// convolution, in plain loops over arrays.
let private convolve (weight: Tensor) (bias: Tensor) (x1: Tensor) =
    let n, c, h, w = x1.shape[0], x1.shape[1], x1.shape[2], x1.shape[3]
    let outputs = weight.shape[0]
    let wv, bv, xv = weight.toArray64(), bias.toArray64(), x1.toArray64()
    Array4D.init n outputs h w (fun i o y x ->
        let mutable sum = bv[o]
        for ch in 0 .. c - 1 do
            for dy in 0 .. 2 do
                for dx in 0 .. 2 do
                    let yy, xx = y + dy - 1, x + dx - 1
                    if yy >= 0 && yy < h && xx >= 0 && xx < w then
                        sum <- sum + wv[((o * c + ch) * 3 + dy) * 3 + dx] * xv[((i * c + ch) * h + yy) * w + xx]
        sum)

[<Fact>]
let ``the learned prior gives the factored-out half the diagonal Gaussian density N(μ(x1), exp(logs(x1))²)`` () =
    Gens.check 4 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let clamp = 3.0
        for image in shapes do
            let b = perturbedLearned g clamp image
            let kept = FactorOut.keptShape image
            let factored = image[0] - kept[0]
            let n, h, w = 5, image[1], image[2]
            let x = Draw.normal g (batchOf n image) * 1.5
            let x1 = x.narrow(1, 0, kept[0])
            // log p(x) = log p_inner(x1) + log p(x2 | x1): the flow over the kept half alone gives the first term
            let whole = Flow.create (Distribution.standardNormal image f64) [ b ]
            let keptOnly = Flow.create (Distribution.standardNormal kept f64) [ { (innerFor g image) with Params = b.Params.Scope "inner"; Buffers = b.Buffers.Scope "inner" } ]
            let conditional = (Flow.logProb Context.none x whole - Flow.logProb Context.none x1 keptOnly).toArray64()
            let raw = convolve b.Params["prior.weight"] b.Params["prior.bias"] x1
            let x2 = x.narrow(1, kept[0], factored).toArray64()
            let expected =
                Array.init n (fun i ->
                    Seq.sum (seq {
                        for j in 0 .. factored - 1 do
                            for y in 0 .. h - 1 do
                                for xx in 0 .. w - 1 do
                                    let mean = raw[i, j, y, xx]
                                    let logScale = clamp * 2.0 / Math.PI * atan (raw[i, factored + j, y, xx] / clamp)
                                    let value = x2[((i * factored + j) * h + y) * w + xx]
                                    yield -0.5 * ((value - mean) / exp logScale) ** 2.0 - logScale - 0.5 * log (2.0 * Math.PI) }))
            Close.arrays $"{Shape.show image}, seed {seed}: log p(x2 | x1)" { Abs = 1e-9; Rel = 1e-9 } expected conditional)

[<Fact>]
let ``Glow settings keep the prior, and settings saved before it existed rebuild the fixed prior`` () =
    let config = { Glow.Config.defaults 1 4 4 with StepsPerLevel = 1; Hidden = 4 }
    for prior in [ FactorOut.Prior.Learned 3.0; FactorOut.Prior.Standard ] do
        Assert.Equal(prior, (Glow.configOfSettings (Glow.settings { config with Prior = prior })).Prior)
    let older = Glow.asRows (Generator 7UL) f64 { config with Prior = FactorOut.Prior.Standard } |> Entry.perturb (Generator 8UL) 0.3
    let oldSettings = older.Settings |> Map.remove "prior"
    Assert.Equal(FactorOut.Prior.Standard, (Glow.configOfSettings oldSettings).Prior)
    let rebuilt = { (Fixtures.find "glow").Build f64 oldSettings with Params = older.Params; Buffers = older.Buffers }
    let x = (Generator 9UL).normal([| 3; 16 |], dtype = f64)
    let y, logDet = Bijector.forward Context.none x older
    let y', logDet' = Bijector.forward Context.none x rebuilt
    Close.tensors "rebuilt output" Tolerance.float64 y y'
    Close.tensors "rebuilt log-det" Tolerance.float64 logDet logDet'
    let unknown = oldSettings |> Map.add "prior" (Setting.Text "laplace")
    let error = Assert.Throws<ArgumentException>(fun () -> Glow.configOfSettings unknown |> ignore)
    Assert.Equal("settings", error.ParamName)
    Assert.Contains("laplace", error.Message)
