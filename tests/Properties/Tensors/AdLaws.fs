/// The AD drivers: JVP against the transposed VJP, Jacobians against finite differences, batched
/// Jacobians and probes against their one-at-a-time forms, DiffSharp's nested-derivative cases
/// (perturbation confusion, a nested minimum, third order), a very deep graph, and a custom op
/// with two inputs and two outputs.
module Flows.Properties.Tensors.AdLaws

open System.Threading
open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Laws
open Flows.Properties.Support

/// Composite functions of a [rows; cols] tensor, mixing element-wise, reduction and matrix ops.
let private composites : (string * (Tensor -> Tensor)) list =
    [ "tanh · exp summed", fun x -> (x.tanh() * x.exp()).sum(-1)
      "logsumexp of x xᵀ", fun x -> x.matmul(x.transpose()).logsumexp(-1)
      "softmax · sigmoid + cumsum", fun x -> x.softmax(-1) * x.sigmoid() + x.cumsum(0) ]

let private matrices = Gen.zip (Gens.shapeOfRank 2 2) Gens.seed

[<Fact>]
let ``The JVP agrees with the transposed VJP and with central differences`` () =
    Gens.check 60 matrices (fun (shape, seed) ->
        for name, f in composites do
            let g = Draw.generator seed
            let x, v = Draw.normal g shape, Draw.normal g shape
            let y, jv = Ad.jvp f x v
            let u = Draw.normal g y.shape
            let _, pullback = Ad.vjp f x
            let inner (a: Tensor) (b: Tensor) = FiniteDifferences.inner (a.toArray64()) (b.toArray64())
            Close.scalar $"{name}: ⟨u, J v⟩ by JVP vs ⟨Jᵀ u, v⟩ by VJP" Tolerance.float64 (inner (pullback u) v) (inner u jv)
            let numeric = (FiniteDifferences.directional (fun xs -> [| f xs[0] |]) [| x |] [| v |])[0]
            Close.values $"{name}: J v by JVP vs central differences" Tolerance.centralDifference y.shape numeric jv)

[<Fact>]
let ``Ad.jacobian agrees with central differences column by column`` () =
    Gens.check 30 matrices (fun (shape, seed) ->
        for name, f in composites do
            let x = Draw.normal (Draw.generator seed) shape
            let jacobian = Ad.jacobian f x
            let y = f x
            Close.shape $"{name}: Jacobian" (Array.append y.shape x.shape) jacobian
            let columns = Array.init x.numel (fun j -> (FiniteDifferences.column (fun xs -> [| f xs[0] |]) [| x |] 0 j)[0])
            let expected = Array.init (y.numel * x.numel) (fun i -> columns[i % x.numel][i / x.numel])
            Close.arrays $"{name}: Jacobian vs central differences" Tolerance.centralDifference expected (jacobian.toArray64()))

[<Fact>]
let ``batchJacobian agrees with the Jacobian of each row alone`` () =
    Gens.check 30 (Gen.zip3 (Gens.shapeOfRank 2 2) Gens.size Gens.seed) (fun (shape, outputs, seed) ->
        let g = Draw.generator seed
        let w, b = Draw.normal g [| outputs; shape[1] |], Draw.normal g [| outputs |]
        // Row-wise: row i of the output depends on row i of the input only.
        let f (x: Tensor) = Tensor.linear(x, w, b).tanh() * x.square().sum(-1, true)
        let x = Draw.normal g shape
        let batched = Ad.batchJacobian f x
        Close.shape "batchJacobian" [| shape[0]; outputs; shape[1] |] batched
        for i in 0 .. shape[0] - 1 do
            let row (t: Tensor) = t.narrow(0, i, 1).squeeze 0
            Close.tensors $"batchJacobian row {i}" Tolerance.float64 (Ad.jacobian f (row x)) (row batched))

[<Fact>]
let ``vjpProbes equals one VJP per probe`` () =
    Gens.check 30 (Gen.zip3 (Gens.shapeOfRank 2 2) (Gen.choose (1, 4)) Gens.seed) (fun (shape, probes, seed) ->
        for name, f in composites do
            let g = Draw.generator seed
            let x = Draw.normal g shape
            let y, pullback = Ad.vjp f x
            let p = Draw.normal g (Array.append [| probes |] y.shape)
            let _, batched = Ad.vjpProbes f x p
            let separate = Tensor.stack(p.unstack 0 |> Array.map pullback, 0)
            Close.tensors $"{name}: vjpProbes" Tolerance.float64 separate batched)

[<Fact>]
let ``Parameter gradients through Ad.jacobian and Ad.batchJacobian satisfy the adjoint identity`` () =
    Gens.check 30 (Gen.zip (Gens.shapeOfRank 2 2) Gens.seed) (fun (shape, seed) ->
        let g = Draw.generator seed
        let x, w = Draw.normal g shape, Draw.normal g [| shape[1]; shape[1] |]
        // The Jacobian trace of a row-wise layer, as a CNF's exact divergence or RNODE's penalty uses it.
        let layer (w: Tensor) (x: Tensor) = x.matmul(w).tanh() * x.sigmoid()
        let viaJacobian (ws: Tensor[]) = [| (Ad.jacobian (layer ws[0]) (x.narrow(0, 0, 1).squeeze 0)).trace() |]
        let viaBatch (ws: Tensor[]) = [| (Ad.batchJacobian (layer ws[0]) x).trace().sum() |]
        FiniteDifferences.checkVjp "trace of Ad.jacobian" seed viaJacobian [| w |]
        FiniteDifferences.checkVjp "trace of Ad.batchJacobian" seed viaBatch [| w |])

// ------------------------------------------------------------------ nested derivatives

let private scalar (v: float) = Tensor.scalar(v, Dtype.Float64)

// Central difference of a float function, for expected values computed without any AD.
let private derivative (f: float -> float) (x: float) = (f (x + 1e-4) - f (x - 1e-4)) / 2e-4

[<Fact>]
let ``d/dx (x · d/dy (x·y)) at x = 1, y = 2 is free of perturbation confusion`` () =
    let x0, y0 = 1.0, 2.0
    let d = Ad.grad (fun x -> x * Ad.grad (fun y -> x * y) (scalar y0)) (scalar x0)
    // The same nesting by central differences: the inner derivative is x, so this is d/dx x² = 2x.
    let expected = derivative (fun x -> x * derivative (fun y -> x * y) y0) x0
    Close.scalar "d/dx (x · d/dy (x·y))" Tolerance.centralDifference expected (d.toScalar())

[<Fact>]
let ``d/dx (x · d/dy (x + y)) is 1: the inner derivative does not see x`` () =
    let x0, y0 = 1.0, 2.0
    let d = Ad.grad (fun x -> x * Ad.grad (fun y -> x + y) (scalar y0)) (scalar x0)
    let expected = derivative (fun x -> x * derivative (fun y -> x + y) y0) x0
    Close.scalar "d/dx (x · d/dy (x + y))" Tolerance.centralDifference expected (d.toScalar())

// Rosenbrock's function, whose minimum over y for fixed x is (1 - x)² at y = x².
let private rosenbrock (x: Tensor) (y: Tensor) = (1.0 - x).square() + 100.0 * (y - x.square()).square()

// min over y by 60 steps of gradient descent (contraction 0.6 per step), differentiable in x.
let private minOverY (x: Tensor) =
    let mutable y = x.zerosLike()
    for _ in 1 .. 60 do
        y <- y - 0.002 * Ad.grad (fun y -> rosenbrock x y) y
    rosenbrock x y

[<Fact>]
let ``The derivative of a nested minimum, through the unrolled inner descent, obeys the envelope theorem`` () =
    Gens.check 10 (Gen.choose (-1000, 1000)) (fun k ->
        let x0 = float k / 1000.0
        let d = Ad.grad minOverY (scalar x0)
        // Envelope theorem: d/dx min_y f(x, y) = ∂f/∂x (x, y*) with y* = x², i.e. -2 (1 - x).
        let expected = derivative (fun x -> (1.0 - x) ** 2.0) x0
        Close.scalar $"d/dx min_y rosenbrock(x, y) at x = {x0}" Tolerance.centralDifference expected (d.toScalar()))

[<Fact>]
let ``Minimising a nested minimum by gradient descent reaches Rosenbrock's global minimum`` () =
    let mutable x = scalar 0.0
    for _ in 1 .. 40 do
        x <- x - 0.25 * Ad.grad minOverY x
    // The global minimum of Rosenbrock's function is 0, at (1, 1).
    Close.scalar "argmin x" { Abs = 1e-8; Rel = 0.0 } 1.0 (x.toScalar())
    Close.scalar "min value" { Abs = 1e-12; Rel = 0.0 } 0.0 ((minOverY x).toScalar())

[<Fact>]
let ``The third derivative of a random polynomial by nested gradients is its closed-form third derivative`` () =
    Gens.check 50 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let coefficients = (Draw.normal g [| 6 |]).toArray64()
        let x0 = (Draw.uniform g -1.5 1.5 [| 1 |]).toArray64()[0]
        // Horner's rule on tensors: a0 + x (a1 + x (a2 + ...)).
        let p (x: Tensor) = Array.foldBack (fun a (acc: Tensor) -> acc * x + a) coefficients (x.zerosLike())
        let third = Ad.grad (Ad.grad (Ad.grad p)) (scalar x0)
        let term k a = if k < 3 then 0.0 else a * float (k * (k - 1) * (k - 2)) * x0 ** float (k - 3)
        let expected = coefficients |> Array.mapi term |> Array.sum
        Close.scalar $"p'''({x0})" Tolerance.float64 expected (third.toScalar()))

[<Fact>]
let ``A gradient through a graph 15000 ops deep needs no deep call stack`` () =
    let steps = 5000
    let x0 = [| 0.3; -1.2; 2.0 |]
    let mutable result = None
    // A small stack: a reverse sweep that recursed once per op would overflow it.
    let worker =
        Thread((fun () ->
            let chain (x: Tensor) =
                let mutable y = x
                for _ in 1 .. steps do
                    y <- y + 0.001 * y.sin()
                y.sum()
            result <- Some(Ad.grad chain (Tensor.ofArray(x0, [| 3 |])))), 256 * 1024)
    worker.Start()
    worker.Join()
    // The chain rule in plain floats: each step multiplies the derivative by 1 + 0.001 cos y.
    let expected =
        x0 |> Array.map (fun x ->
            let mutable y, d = x, 1.0
            for _ in 1 .. steps do
                d <- d * (1.0 + 0.001 * cos y)
                y <- y + 0.001 * sin y
            d)
    Close.values "gradient of the deep chain" Tolerance.float64 [| 3 |] expected result.Value

// ------------------------------------------------------------------ custom ops

/// (a, b) ↦ (a·b, exp(a) + b) as one custom primitive with a hand-written backward.
let private productAndShift (inputs: Tensor[]) =
    let forward (raw: RawTensor[]) =
        [| raw[0].Binary(BinaryOp.Mul, raw[1]); raw[0].Unary(UnaryOp.Exp).Binary(BinaryOp.Add, raw[1]) |]
    let backward (xs: Tensor[]) (ys: Tensor[]) (adjoints: Tensor[]) =
        // exp(a) is recovered from the second output as v - b.
        [| adjoints[0] * xs[1] + adjoints[1] * (ys[1] - xs[1]); adjoints[0] * xs[0] + adjoints[1] |]
    Tensor.custom(inputs, forward, backward)

[<Fact>]
let ``A custom op with two inputs and two outputs has a backward that matches central differences`` () =
    Gens.check 100 (Gen.zip Gens.shape Gens.seed) (fun (shape, seed) ->
        let g = Draw.generator seed
        let inputs = [| Draw.normal g shape; Draw.normal g shape |]
        FiniteDifferences.checkVjp "custom (a·b, exp a + b)" seed productAndShift inputs
        FiniteDifferences.checkVjp "custom, second output only" seed (fun xs -> [| (productAndShift xs)[1] |]) inputs
        FiniteDifferences.checkVjpOfVjp "custom, summed outputs" seed (fun xs -> let ys = productAndShift xs in ys[0] * ys[1]) inputs
        // Inputs from two nesting levels: a from the outer one, b from the inner one.
        let mixed (a: Tensor[]) = [| Ad.grad (fun b -> let ys = productAndShift [| a[0]; b |] in (ys[0] * ys[1]).sum()) inputs[1] |]
        FiniteDifferences.checkVjp "custom, inputs at two levels" seed mixed [| inputs[0] |])
