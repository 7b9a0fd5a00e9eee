/// The convolution (im2col, and shifted products when it narrows) against a direct loop over the
/// kernel, and its gradients against central differences.
module Flows.Properties.Nn.ConvTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// A random convolution case: images [n; c; h; w], weight [out; c; k; k], bias [out].
type private Case =
    { X: Tensor
      Weight: Tensor
      Bias: Tensor }

let private draw (seed: int) =
    let g = Draw.generator seed
    let pick (low: int) (high: int) = g.integers([| 1 |], low, high + 1).toArrayInt()[0]
    let n, c, h, w, outputs = pick 1 3, pick 1 3, pick 1 5, pick 1 5, pick 1 3
    let k = [| 1; 3; 5 |][pick 0 2]
    { X = Draw.normal g [| n; c; h; w |]; Weight = Draw.normal g [| outputs; c; k; k |]; Bias = Draw.normal g [| outputs |] }

let private parameters (weight: Tensor) (bias: Tensor) = Params.ofList [ "weight", weight; "bias", bias ]

/// y[i, o, y, x] = b[o] + Σ w[o, c, dy, dx] · x[i, c, y + dy − k/2, x + dx − k/2], zero outside.
let private direct (case: Case) =
    let x, wt, b = case.X.toArray64(), case.Weight.toArray64(), case.Bias.toArray64()
    let n, c, h, w = case.X.shape[0], case.X.shape[1], case.X.shape[2], case.X.shape[3]
    let outputs, k = case.Weight.shape[0], case.Weight.shape[2]
    let r = k / 2
    [| for i in 0 .. n - 1 do
           for o in 0 .. outputs - 1 do
               for y in 0 .. h - 1 do
                   for xx in 0 .. w - 1 do
                       let mutable s = b[o]
                       for ci in 0 .. c - 1 do
                           for dy in 0 .. k - 1 do
                               for dx in 0 .. k - 1 do
                                   let sy, sx = y + dy - r, xx + dx - r
                                   if sy >= 0 && sy < h && sx >= 0 && sx < w then
                                       s <- s + wt[((o * c + ci) * k + dy) * k + dx] * x[((i * c + ci) * h + sy) * w + sx]
                       yield s |]

[<Fact>]
let ``a same convolution equals the direct sum over the kernel, with and without ReLU`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let case = draw seed
        let expected = direct case
        let shape = [| case.X.shape[0]; case.Weight.shape[0]; case.X.shape[2]; case.X.shape[3] |]
        let p = parameters case.Weight case.Bias
        Close.values $"conv (seed {seed})" Tolerance.float64 shape expected (Conv.apply None p case.X)
        Close.values $"conv + ReLU (seed {seed})" Tolerance.float64 shape (expected |> Array.map (max 0.0)) (Conv.apply (Some Activation.Relu) p case.X))

[<Fact>]
let ``convolution gradients in the input, weight and bias match central differences`` () =
    Gens.check 15 Gens.seed (fun seed ->
        let case = draw seed
        FiniteDifferences.checkVjp "conv" seed (fun xs -> [| Conv.apply None (parameters xs[1] xs[2]) xs[0] |]) [| case.X; case.Weight; case.Bias |])

[<Fact>]
let ``narrowing convolutions (fewer outputs than inputs, shifted products) equal the direct sum and its gradients`` () =
    for kernel in [ 3; 5 ] do
        for seed in 1 .. 3 do
            let g = Draw.generator (100 * kernel + seed)
            let case = { X = Draw.normal g [| 2; 6; 5; 4 |]; Weight = Draw.normal g [| 2; 6; kernel; kernel |]; Bias = Draw.normal g [| 2 |] }
            let expected = direct case
            let p = parameters case.Weight case.Bias
            Close.values $"narrowing conv (k {kernel}, seed {seed})" Tolerance.float64 [| 2; 2; 5; 4 |] expected (Conv.apply None p case.X)
            Close.values $"narrowing conv + ReLU (k {kernel}, seed {seed})" Tolerance.float64 [| 2; 2; 5; 4 |] (expected |> Array.map (max 0.0))
                (Conv.apply (Some Activation.Relu) p case.X)
            FiniteDifferences.checkVjp "narrowing conv" seed (fun xs -> [| Conv.apply None (parameters xs[1] xs[2]) xs[0] |]) [| case.X; case.Weight; case.Bias |]

[<Fact>]
let ``a zero convolution outputs zeros and even kernels are refused`` () =
    let gen = Generator 5UL
    let p = Conv.create gen Dtype.Float64 2 3 3 true
    let y = Conv.apply None p (gen.normal([| 2; 2; 4; 4 |], dtype = Dtype.Float64))
    Close.tensors "zero conv" Tolerance.float64 (y.zerosLike()) y
    let error = Assert.Throws<System.ArgumentException>(fun () -> Conv.create gen Dtype.Float64 2 3 2 false |> ignore)
    Assert.Equal("kernel", error.ParamName)
