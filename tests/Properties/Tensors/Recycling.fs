/// Memory reuse never changes a result: gradients, repeated pullbacks, nested derivatives and a
/// whole training run are bit-identical with recycling on and off, on tensors large enough to be
/// pooled (4096 elements and up).
module Flows.Properties.Tensors.Recycling

open Xunit
open Flows
open Flows.Bijectors
open Flows.Data
open Flows.Datasets
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Training

let private exactly (what: string) (expected: Tensor) (actual: Tensor) =
    Assert.True((expected.shape = actual.shape), $"{what}: shapes differ")
    Assert.True((expected.toArray64() = actual.toArray64()), $"{what}: values differ")

let private mlp (activation: Activation) (ws: Tensor[]) (x: Tensor) =
    let h1 = Tensor.dense(x, ws[0], ws[1], activation)
    let h2 = Tensor.dense(h1, ws[2], ws[3], activation)
    (Tensor.dense(h2, ws[4], ws[5], Activation.Identity) + h1.sum(1, true)).tanh()

let private weights (dtype: Dtype) =
    let g = Generator 17UL
    [| g.normal([| 96; 3 |], 0.0, 0.5, dtype); g.normal([| 96 |], dtype = dtype)
       g.normal([| 96; 96 |], 0.0, 0.1, dtype); g.normal([| 96 |], dtype = dtype)
       g.normal([| 2; 96 |], 0.0, 0.1, dtype); g.normal([| 2 |], dtype = dtype) |]

[<Fact>]
let ``gradients of a large MLP are identical with and without reuse, call after call`` () =
    for dtype in [ Dtype.Float32; Dtype.Float64 ] do
        for activation in [ Activation.Tanh; Activation.Relu; Activation.Softplus ] do
            let ws = weights dtype
            let x = (Generator 3UL).normal([| 256; 3 |], dtype = dtype)
            let loss (v: Tensor[]) = (mlp activation v x).square().mean()
            let expected = Memory.withoutRecycling (fun () -> Ad.fgradN loss ws)
            for call in 1 .. 3 do
                let value, grads = Ad.fgradN loss ws
                let value', grads' = Ad.fgradNReusing loss ws
                exactly $"{dtype} {activation} call {call} value" (fst expected) value
                exactly $"{dtype} {activation} call {call} reusing value" (fst expected) value'
                Array.iteri2 (fun i e g -> exactly $"{dtype} {activation} call {call} grad {i}" e g) (snd expected) grads
                Array.iteri2 (fun i e g -> exactly $"{dtype} {activation} call {call} reusing grad {i}" e g) (snd expected) grads'

[<Fact>]
let ``a pullback called many times gives the same adjoints each time`` () =
    let ws = weights Dtype.Float32
    let x = (Generator 4UL).normal([| 256; 3 |])
    let y, pullback = Ad.vjp (fun x -> mlp Activation.Tanh ws x) x
    let cotangent = (Generator 5UL).normal(y.shape)
    let first = pullback cotangent
    let expected = Memory.withoutRecycling (fun () -> pullback cotangent)
    exactly "first pullback" expected first
    for _ in 1 .. 3 do
        exactly "repeated pullback" expected (pullback cotangent)

[<Fact>]
let ``second derivatives through a large MLP are identical with and without reuse`` () =
    let ws = weights Dtype.Float64
    let x = (Generator 6UL).normal([| 64; 3 |], dtype = Dtype.Float64)
    let gradNorm (v: Tensor[]) = (Ad.gradN (fun w -> (mlp Activation.Tanh w x).square().sum()) v |> Array.map (fun g -> g.square().sum()) |> Array.reduce (+))
    let expected = Memory.withoutRecycling (fun () -> Ad.gradN gradNorm ws)
    Array.iteri2 (fun i e g -> exactly $"grad of grad {i}" e g) expected (Ad.gradN gradNorm ws)

[<Fact>]
let ``a training run is bit-identical with and without reuse, for each optimiser and with clipping`` () =
    // SGD's momentum buffer is the gradient itself at the first step or without momentum, and the
    // loop recycles gradients and replaced moments: none may be taken while still held
    for optimiser, clip in [ TrainOptions.defaults.Optimiser, None; Optimiser.Sgd(0.9, 0.0), None; Optimiser.Sgd(0.0, 1e-3), Some 0.5; Optimiser.AdamW(0.9, 0.99, 1e-8, 0.1), Some 2.0 ] do
    let run () =
        let gen = Generator 8UL
        let layer mask =
            Coupling.create gen Dtype.Float32
                { Dim = 2; Mask = mask; Conditioner = Conditioner.Mlp([ 64; 64 ], Flows.Nn.Activation.Relu)
                  ScaleMap = Coupling.ScaleMap.Exp; Affine = true; ContextDim = 0 }
        let flow = Flow.create (Distribution.diagonalNormal [| 2 |] Dtype.Float32) [ layer (Coupling.Mask.Half false); layer (Coupling.Mask.Half true) ]
        let options = { TrainOptions.defaults with Steps = 40; BatchSize = 256; LearningRate = 1e-3; Seed = 9UL; Optimiser = optimiser; ClipNorm = clip }
        let trained, _ = Train.fit options (Objective.ForwardKl(DataSource.Sampler(fun g n -> Toy.twoMoons g n Dtype.Float32))) flow |> Train.result
        Flow.parameters trained
    let expected = Memory.withoutRecycling run
    let actual = run ()
    Array.iteri2 (fun i e g -> exactly $"{optimiser} clip {clip}: parameter {expected.Names[i]}" e g) expected.Values actual.Values

[<Fact>]
let ``a constant first copied inside a reusing computation keeps its values after it`` () =
    // the float32 copy of a float64 constant is made on first use, maybe inside a computation whose
    // intermediates go back to the pool (Train.fit's steps, Flow.logProb's blocks): the cache must
    // never hold pooled memory
    let values = Array.init 4096 float
    let c = Constant.ofArray(values, [| 4096 |])
    let like = Tensor.zeros([| 1 |], Dtype.Float32)
    Ad.fgradNReusing (fun xs -> (xs[0] * (c.Like like).sum()).sum()) [| Tensor.ones([| 1 |], Dtype.Float32) |] |> ignore
    // arrays of the same length rented and written after the computation
    let others = [ for k in 1 .. 4 -> Tensor.full([| 4096 |], -float k, Dtype.Float32) + 0.0 ]
    Assert.Equal(4, others.Length)
    Assert.Equal<float[]>(values, (c.Like like).toArray64())

[<Fact>]
let ``ODE solves reuse each evaluation's memory without changing a gradient, adjoint or backpropagated`` () =
    // hidden activations [256; 32] are pooled; the adjoint's evaluations recycle theirs, the
    // backpropagated solve must keep them for its graph
    let g = Generator 21UL
    let p = Mlp.create g Dtype.Float64 [ 3; 32; 2 ] false
    let field (theta: Tensor[]) (t: Tensor) (z: Tensor) =
        let tz = Tensor.cat([| z; (t.reshape [| 1; 1 |]).expand [| z.shape[0]; 1 |] |], 1)
        Mlp.apply Flows.Nn.Activation.Tanh (p.WithValues theta) tz
    let z0 = g.normal([| 256; 2 |], dtype = Dtype.Float64)
    let solver = Flows.Ode.Solver.Dopri5(Flows.Ode.Tolerances.uniform 1e-6)
    let inputs = Array.append [| z0 |] p.Values
    for name, solve in
        [ "adjoint", (fun (xs: Tensor[]) -> Flows.Continuous.Adjoint.solve solver Flows.Ode.SolverOptions.defaults field xs[1..] xs[0] 0.0 1.0)
          "backpropagated", (fun (xs: Tensor[]) -> (Flows.Ode.Ode.solve solver Flows.Ode.SolverOptions.defaults (field xs[1..]) xs[0] 0.0 1.0 [||]).Final) ] do
        let loss (xs: Tensor[]) = (solve xs).square().sum()
        let expected = Memory.withoutRecycling (fun () -> Ad.gradN loss inputs)
        for call in 1 .. 2 do
            Array.iteri2 (fun i e a -> exactly $"{name}, call {call}: gradient {i}" e a) expected (Ad.gradN loss inputs)
            Array.iteri2 (fun i e a -> exactly $"{name}, call {call}: reusing gradient {i}" e a) expected (snd (Ad.fgradNReusing loss inputs))
