/// The GPU parity suite: every raw op (through the Tensor API, with gradients) and every catalogue
/// bijector computed on the CPU and on a CUDA device from the same inputs, compared within a stated
/// float32 tolerance. Shared by the test project (which runs it only when a device is present) and
/// by the CudaCheck console program (published self-contained for GPU machines without .NET).
module Flows.CudaCheck.Parity

open System
open Flows
open Flows.Tensors
open Flows.Fixtures
open Flows.Tensors.Backend

/// |gpu − cpu| ≤ Abs + Rel·max(|gpu|, |cpu|), element by element. The device's transcendental
/// functions differ from .NET's by a few ulps, and sums and GEMMs add in another order.
let tolerance = {| Abs = 1e-4; Rel = 1e-3 |}

/// One comparison's outcome.
type Outcome =
    { Name: string
      /// Largest |gpu − cpu| over all compared outputs (NaN when the case threw).
      MaxError: float
      Passed: bool
      /// Why it failed, empty when it passed.
      Detail: string }

let private within (cpu: float) (gpu: float) =
    cpu = gpu
    || (Double.IsNaN cpu && Double.IsNaN gpu)
    || abs (gpu - cpu) <= tolerance.Abs + tolerance.Rel * max (abs gpu) (abs cpu)

/// Compares lists of outputs computed on the two devices.
let compare (name: string) (cpu: Tensor list) (gpu: Tensor list) : Outcome =
    let mutable worst = 0.0
    let problems = Collections.Generic.List<string>()
    if cpu.Length <> gpu.Length then problems.Add $"{cpu.Length} outputs on the CPU, {gpu.Length} on the GPU"
    for k, (c, g) in List.indexed (List.zip (List.truncate gpu.Length cpu) (List.truncate cpu.Length gpu)) do
        if c.shape <> g.shape then problems.Add $"output {k}: shape {Shape.show c.shape} on the CPU, {Shape.show g.shape} on the GPU"
        elif g.device <> gpu.Head.device then problems.Add $"output {k} is on {g.device}, output 0 on {gpu.Head.device}"
        else
            let a = c.toArray64()
            let b = (g.moveTo Device.Cpu).toArray64()
            for i in 0 .. a.Length - 1 do
                if Double.IsFinite a[i] && Double.IsFinite b[i] then worst <- max worst (abs (a[i] - b[i]))
                if not (within a[i] b[i]) && problems.Count < 5 then problems.Add $"output {k} [{i}]: cpu {a[i]}, gpu {b[i]}"
    { Name = name; MaxError = worst; Passed = problems.Count = 0; Detail = String.Join("; ", problems) }

/// Runs `compute` on both devices; an exception on either side is a failed outcome naming it.
let private run (name: string) (device: Device) (compute: Device -> Tensor list) =
    try
        compare name (compute Device.Cpu) (compute device)
    with e ->
        { Name = name; MaxError = nan; Passed = false; Detail = $"{e.GetType().Name}: {e.Message}" }

/// An op case: inputs drawn on the CPU (float32) and moved; the op's output, and the gradient of
/// Σ w·f(x) for fixed random weights w with respect to every float input.
let private op (name: string) (inputs: Generator -> Tensor list) (f: Tensor list -> Tensor) (device: Device) =
    run name device (fun d ->
        let xs = inputs (Generator 42UL) |> List.map (fun x -> x.moveTo d)
        let y = f xs
        if not y.dtype.IsFloat then [ y ]
        else
            let w = (Generator 7UL).normal(y.shape).moveTo d
            let floats = xs |> List.filter (fun x -> x.dtype.IsFloat) |> Array.ofList
            let grads =
                Ad.gradN (fun vs ->
                    let mutable k = 0
                    let replaced = xs |> List.map (fun x -> if x.dtype.IsFloat then (k <- k + 1; vs[k - 1]) else x)
                    (f replaced * w).sum()) floats
            y :: List.ofArray grads)

let private normal (shape: int[]) (g: Generator) = g.normal shape
let private positive (shape: int[]) (g: Generator) = g.uniform(shape, 0.5, 2.0)

/// The op cases: every RawTensor op and backend creation function is reached by at least one.
let opCases : (Device -> Outcome) list =
    let one name shape f = op name (fun g -> [ normal shape g ]) (fun xs -> f xs.Head)
    let two name s1 s2 f = op name (fun g -> [ normal s1 g; normal s2 g ]) (fun xs -> f xs[0] xs[1])
    [ one "neg" [| 3; 5 |] (fun x -> -x)
      one "exp" [| 3; 5 |] (fun x -> x.exp())
      op "log" (fun g -> [ positive [| 3; 5 |] g ]) (fun xs -> xs.Head.log())
      one "log1p" [| 4 |] (fun x -> (x * x).log1p())
      one "expm1" [| 4 |] (fun x -> x.expm1())
      op "sqrt" (fun g -> [ positive [| 7 |] g ]) (fun xs -> xs.Head.sqrt())
      one "abs, sign" [| 9 |] (fun x -> x.abs() + x.sign())
      one "tanh" [| 4; 33 |] (fun x -> x.tanh())
      one "sigmoid" [| 4; 33 |] (fun x -> x.sigmoid())
      one "softplus" [| 4; 33 |] (fun x -> (x * 10.0).softplus())
      one "relu" [| 4; 33 |] (fun x -> x.relu())
      one "sin, cos, atan" [| 10 |] (fun x -> x.sin() + x.cos() * x.atan())
      one "square, reciprocal" [| 10 |] (fun x -> x.square() + (x.abs() + 1.0).reciprocal())
      one "floor, ceil, round" [| 10 |] (fun x -> (x * 3.0).floor() + (x * 3.0).ceil() + (x * 3.0).round() + x)
      one "leaky relu, elu" [| 12 |] (fun x -> x.leakyRelu 0.1 + x.elu 1.0)
      one "clamp" [| 12 |] (fun x -> x.clamp(-0.5, 0.5))
      one "isnan, isinf" [| 5 |] (fun x -> (x.log()).isnan() + (x / x.zerosLike()).isinf())
      two "add, mul broadcast" [| 4; 1; 3 |] [| 5; 1 |] (fun a b -> a + a * b)
      two "sub, div" [| 3; 4 |] [| 4 |] (fun a b -> (a - b) / (b.abs() + 1.0))
      op "pow" (fun g -> [ positive [| 6 |] g; normal [| 6 |] g ]) (fun xs -> xs[0] ** xs[1])
      two "max, min" [| 6 |] [| 6 |] (fun a b -> a.max b + a.min b)
      two "atan2" [| 6 |] [| 6 |] (fun a b -> a.atan2 b)
      two "comparisons" [| 2; 5 |] [| 5 |] (fun a b -> a.lt b + a.gt b + a.le b + a.ge b + a.eq a + a.ne b)
      two "where" [| 3; 4 |] [| 4 |] (fun a b -> Tensor.where(a.gt b, a, b))
      one "sum, mean over dims" [| 3; 4; 5 |] (fun x -> x.sum(1) + x.mean(1))
      one "sum of a long row" [| 2; 5000 |] (fun x -> x.sum(1))
      one "max, min along a dim" [| 3; 70 |] (fun x -> x.max(1) + x.min(1))
      one "argmax" [| 6; 9 |] (fun x -> x.argmax 1)
      one "argmin" [| 6; 9 |] (fun x -> x.argmin 0)
      one "logsumexp, softmax" [| 5; 8 |] (fun x -> x.logsumexp(1).unsqueeze(1) + x.softmax 1)
      one "cumsum forward and reverse" [| 3; 6; 2 |] (fun x -> x.cumsum 1 + x.cumsum(2, reverse = true))
      one "sumTo" [| 4; 3; 5 |] (fun x -> x.sumTo [| 3; 1 |])
      one "expand" [| 3; 1 |] (fun x -> x.expand [| 2; 3; 4 |])
      one "permute" [| 2; 3; 4 |] (fun x -> x.permute [| 2; 0; 1 |])
      one "slice" [| 5; 6 |] (fun x -> x.slice([| 1; 2 |], [| 3; 3 |]))
      one "pad" [| 2; 3 |] (fun x -> x.pad([| 1; 0 |], [| 0; 2 |], 0.5))
      one "flip" [| 3; 4 |] (fun x -> x.flip [| 0; 1 |])
      one "tril, triu" [| 2; 4; 4 |] (fun x -> x.tril() + x.triu 1)
      two "cat" [| 2; 3 |] [| 2; 5 |] (fun a b -> Tensor.cat([| a; b |], 1))
      op "gather, scatterAdd" (fun g -> [ normal [| 4; 6 |] g; g.integers([| 4; 9 |], 0, 6) ]) (fun xs -> xs[0].gather(1, xs[1]).scatterAdd(1, xs[1], [| 4; 6 |]))
      op "searchsorted" (fun g -> [ (normal [| 3; 10 |] g).cumsum 1; normal [| 3; 7 |] g ]) (fun xs -> xs[0].searchsorted(xs[1]).cast Dtype.Float32 + xs[0].searchsorted(xs[1], right = true).cast Dtype.Float32)
      two "matmul" [| 33; 17 |] [| 17; 9 |] (fun a b -> a.matmul b)
      two "batched matmul, transposed" [| 2; 1; 5; 4 |] [| 3; 6; 4 |] (fun a b -> a.matmul(b.transpose(1, 2)))
      op "solveTriangular" (fun g -> [ (normal [| 2; 4; 4 |] g).tril() + Tensor.eye(4) * 3.0; normal [| 2; 4; 3 |] g ]) (fun xs -> xs[0].solveTriangular(xs[1], false))
      op "solveTriangular transposed upper" (fun g -> [ (normal [| 4; 4 |] g).triu() + Tensor.eye(4) * 3.0; normal [| 4; 2 |] g ]) (fun xs -> xs[0].solveTriangular(xs[1], true, transpose = true))
      one "lu, slogdet" [| 3; 5; 5 |] (fun x -> let _, logAbs = x.slogdet() in logAbs)
      op "dense + activations" (fun g -> [ normal [| 37; 8 |] g; normal [| 16; 8 |] g; normal [| 16 |] g ]) (fun xs ->
          [ Activation.Identity; Activation.Tanh; Activation.Sigmoid; Activation.Relu; Activation.LeakyRelu 0.2; Activation.Softplus; Activation.Elu 1.0 ]
          |> List.map (fun a -> Tensor.dense(xs[0], xs[1], xs[2], a))
          |> List.reduce (+))
      op "affine map" (fun g -> [ normal [| 6; 3 |] g; normal [| 6; 3 |] g; normal [| 6; 3 |] g ]) (fun xs ->
          Tensor.affineMap(xs[0], xs[1], xs[2], false) + Tensor.affineMap(xs[0], xs[1], xs[2], true))
      op "rational-quadratic spline, both directions" (fun g -> [ normal [| 6; 3 |] g * 2.0; normal [| 6; 3; 8 |] g; normal [| 6; 3; 8 |] g; normal [| 6; 3; 7 |] g ]) (fun xs ->
          let config = Transformers.Spline.config 8 3.0
          let y, logDy = Transformers.RationalQuadratic.forward config xs[0] xs[1] xs[2] xs[3]
          let x, logDx = Transformers.RationalQuadratic.inverse config xs[0] xs[1] xs[2] xs[3]
          y + logDy + x + logDx)
      op "spline knots from unnormalised sizes" (fun g -> [ normal [| 6; 3; 8 |] g * 3.0 ]) (fun xs -> Transformers.Spline.knots 3.0 1e-3 xs.Head)
      op "cast" (fun g -> [ normal [| 7 |] g ]) (fun xs -> (xs.Head * 4.0).cast(Dtype.Int32).cast(Dtype.Float64).cast(Dtype.Float32) + xs.Head.cast(Dtype.Float64).cast(Dtype.Float32)) ]
    @ [ fun device ->
            run "adam step" device (fun d ->
                let g = Generator 3UL
                let w, gr, m = g.normal([| 50 |]).moveTo d, g.normal([| 50 |]).moveTo d, g.normal([| 50 |]).moveTo d
                let v = g.uniform([| 50 |], 0.0, 1.0).moveTo d
                let config = { LearningRate = 1e-2; Beta1 = 0.9; Beta2 = 0.999; Eps = 1e-8; WeightDecay = 1e-2; Decoupled = true; Step = 3 }
                let a, b, c = Tensor.adamStep(w, gr, m, v, config)
                [ a; b; c ])
        fun device ->
            run "creation: full, arange, ofArray, eye" device (fun d ->
                [ Tensor.full([| 2; 3 |], 1.5, device = d); Tensor.arange(7, device = d); Tensor.arange(5, Dtype.Int32, d).cast Dtype.Float32
                  Tensor.ofArray([| 1.0f; 2.0f; 3.0f |], device = d); Tensor.eye(3, device = d) ])
        fun device ->
            // uniform, Bernoulli, Rademacher and integers are bit-identical; normals within an ulp or two
            run "random: same seed, same numbers" device (fun d ->
                let g = Generator 11UL
                [ g.uniform([| 1000 |], -2.0, 3.0, device = d); g.normal([| 1000 |], device = d); g.rademacher([| 100 |], device = d)
                  g.bernoulli([| 100 |], 0.3, device = d); (g.integers([| 100 |], 0, 10, d)).cast Dtype.Float32
                  g.normal([| 100 |], dtype = Dtype.Float64, device = d) ]) ]

/// A data-side input inside a bijector's domain.
let private inputFor (entry: Fixture) (g: Generator) (n: int) (dim: int) =
    match entry.Domain with
    | Domain.Real -> g.normal [| n; dim |]
    | Domain.Positive -> g.uniform([| n; dim |], 0.5, 2.0)
    | Domain.Interval(lo, hi) -> g.uniform([| n; dim |], lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))

/// One case per catalogue bijector: inverse and forward with their log-dets, and the gradient of
/// Σ logdet + Σ w·y with respect to every parameter.
let bijectorCases : (Device -> Outcome) list =
    Library.all
    |> List.map (fun entry ->
        fun device ->
            run $"bijector {entry.Name}" device (fun d ->
                let dim = if List.contains 3 entry.Dims then 3 else List.head entry.Dims
                let g = Generator 5UL
                let b = entry.Random g Dtype.Float32 dim |> Bijector.moveTo d
                let ctx =
                    match entry.ContextDim with
                    | Some c -> Context.ofCondition (g.normal([| 6; c |]).moveTo d)
                    | None -> Context.none
                let x = (inputFor entry g 6 dim).reshape(Array.append [| 6 |] b.Event).moveTo d
                let z, ldInverse = Bijector.inverse ctx x b
                let y, ldForward = Bijector.forward ctx z b
                let w = (Generator 9UL).normal(z.shape).moveTo d
                let grads =
                    Ad.gradN (fun vs ->
                        let p = Bijector.withBuffers (b.Params.WithValues vs) b
                        let z', ld = b.Inverse p ctx x
                        ld.sum() + (z' * w).sum()) b.Params.Values
                [ z; ldInverse; y; ldForward ] @ List.ofArray grads))

/// Runs every case on `device`.
let runAll (device: Device) : Outcome list = (opCases @ bijectorCases) |> List.map (fun case -> case device)
