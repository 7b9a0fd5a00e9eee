/// Element-wise ops: the VJP of every differentiable map satisfies the adjoint identity against
/// central differences in float64, on random shapes (binary ops on random broadcastable pairs),
/// with inputs kept away from each op's kinks and domain edges; float32 agrees with float64.
module Flows.Properties.Tensors.PrimitiveLaws.Elementwise

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// An element-wise op and where its inputs are drawn from.
type private Op =
    { Name: string
      Inputs: (Generator -> int[] -> Tensor) list
      Apply: Tensor[] -> Tensor }

let private normal = Draw.normal
let private positive g shape = Draw.uniform g 0.3 3.0 shape
let private away margin g shape = Draw.awayFromZero g margin shape

let private unary name draw (f: Tensor -> Tensor) = { Name = name; Inputs = [ draw ]; Apply = fun xs -> f xs[0] }
let private binary name drawA drawB (f: Tensor -> Tensor -> Tensor) =
    { Name = name; Inputs = [ drawA; drawB ]; Apply = fun xs -> f xs[0] xs[1] }

// The kinks: abs, relu, leakyRelu and elu at 0, clamp at its bounds, reciprocal's pole at 0.
let private unaries =
    [ unary "neg" normal (fun x -> -x)
      unary "exp" normal _.exp()
      unary "log" positive _.log()
      unary "log1p" (fun g s -> Draw.uniform g -0.7 3.0 s) _.log1p()
      unary "expm1" normal _.expm1()
      unary "sqrt" positive _.sqrt()
      unary "abs" (away 0.1) _.abs()
      unary "tanh" normal _.tanh()
      unary "sigmoid" normal _.sigmoid()
      unary "softplus" (fun g s -> Draw.normal g s * 4.0) _.softplus()
      unary "relu" (away 0.1) _.relu()
      unary "leakyRelu" (away 0.1) _.leakyRelu(0.1)
      unary "elu" (away 0.1) _.elu(1.3)
      unary "sin" normal _.sin()
      unary "cos" normal _.cos()
      unary "atan" normal _.atan()
      unary "square" normal _.square()
      unary "reciprocal" (away 0.5) _.reciprocal()
      unary "clamp" (fun g s -> Draw.avoiding g [ -0.5; 0.7 ] 0.05 s) _.clamp(-0.5, 0.7)
      unary "logsigmoid" normal _.logsigmoid()
      unary "softplusInverse" (fun g s -> Draw.uniform g 0.2 3.0 s) _.softplusInverse()
      unary "x + s" normal (fun x -> x + 1.5)
      unary "s + x" normal (fun x -> 1.5 + x)
      unary "x - s" normal (fun x -> x - 1.5)
      unary "s - x" normal (fun x -> 1.5 - x)
      unary "x * s" normal (fun x -> x * -1.5)
      unary "s * x" normal (fun x -> -1.5 * x)
      unary "x / s" normal (fun x -> x / 1.5)
      unary "s / x" (away 0.5) (fun x -> 1.5 / x)
      unary "Pow(x, 2)" normal (fun x -> Tensor.Pow(x, 2.0))
      unary "Pow(x, 3)" normal (fun x -> Tensor.Pow(x, 3.0))
      unary "Pow(x, 0.5)" positive (fun x -> Tensor.Pow(x, 0.5))
      unary "Pow(x, -1)" (away 0.5) (fun x -> Tensor.Pow(x, -1.0))
      unary "Pow(x, -1.5)" positive (fun x -> Tensor.Pow(x, -1.5)) ]

// max and min draw both operands from one tie-free set; atan2 keeps the point off the origin.
let private distinctPair (f: Tensor -> Tensor -> Tensor) = fun (xs: Tensor[]) -> f xs[0] xs[1]

let private binaries =
    [ binary "a + b" normal normal (+)
      binary "a - b" normal normal (-)
      binary "a * b" normal normal (*)
      binary "a / b" normal (away 0.5) (/)
      binary "Pow(a, b)" positive normal (fun a b -> Tensor.Pow(a, b))
      binary "atan2(a, b)" normal (away 0.3) (fun a b -> a.atan2 b)
      { Name = "max(a, b)"; Inputs = []; Apply = distinctPair (fun a b -> a.max b) }
      { Name = "min(a, b)"; Inputs = []; Apply = distinctPair (fun a b -> a.min b) } ]

let private find (ops: Op list) name = ops |> List.find (fun op -> op.Name = name)

/// The names of the unary ops, one theory case each.
let unaryNames : obj[] seq = unaries |> Seq.map (fun op -> [| box op.Name |])
/// The names of the binary ops, one theory case each.
let binaryNames : obj[] seq = binaries |> Seq.map (fun op -> [| box op.Name |])

[<Theory; MemberData(nameof unaryNames)>]
let ``Each unary op's VJP satisfies the adjoint identity on random shapes`` (name: string) =
    let op = find unaries name
    Gens.check 100 (Gen.zip Gens.shape Gens.seed) (fun (shape, seed) ->
        let g = Draw.generator seed
        let x = op.Inputs.Head g shape
        FiniteDifferences.checkVjp $"{name} on {Shape.show shape}" seed (fun xs -> [| op.Apply xs |]) [| x |])

[<Theory; MemberData(nameof binaryNames)>]
let ``Each binary op's VJP satisfies the adjoint identity on random broadcastable shapes`` (name: string) =
    let op = find binaries name
    Gens.check 100 (Gen.zip (Gens.broadcastShapes 2) Gens.seed) (fun (shapes, seed) ->
        let g = Draw.generator seed
        let inputs =
            match op.Inputs with
            | [ drawA; drawB ] -> [| drawA g shapes[0]; drawB g shapes[1] |]
            | _ -> Draw.distinct g shapes
        FiniteDifferences.checkVjp $"{name} on {Shape.show shapes[0]} and {Shape.show shapes[1]}" seed (fun xs -> [| op.Apply xs |]) inputs)

[<Fact>]
let ``where's VJP satisfies the adjoint identity with a broadcast condition and broadcast branches`` () =
    Gens.check 100 (Gen.zip (Gens.broadcastShapes 3) Gens.seed) (fun (shapes, seed) ->
        let g = Draw.generator seed
        let condition = g.bernoulli(shapes[0], 0.5, dtype = Dtype.Float64)
        let a, b = Draw.normal g shapes[1], Draw.normal g shapes[2]
        FiniteDifferences.checkVjp $"where on {Shape.show shapes[0]}, {Shape.show shapes[1]}, {Shape.show shapes[2]}" seed
            (fun xs -> [| Tensor.where(condition, xs[0], xs[1]) |]) [| a; b |])

// f and its VJP (cotangent c) at x in float32, against the same in float64 at the same rounded inputs.
let private singleAgreesWithDouble what (f: Tensor[] -> Tensor) (xs: Tensor[]) (c: Tensor) =
    let run dtype =
        let inputs = xs |> Array.map (fun x -> x.cast(Dtype.Float32).cast dtype)
        let ys, pullback = Ad.vjpN (fun xs -> [| f xs |]) inputs
        ys[0], pullback [| c.cast dtype |]
    let y32, g32 = run Dtype.Float32
    let y64, g64 = run Dtype.Float64
    Close.tensors $"{what}: float32 value vs float64" Tolerance.float32 y64 y32
    let adjoint k expected actual = Close.tensors $"{what}: float32 adjoint {k} vs float64" Tolerance.float32 expected actual
    Array.iteri2 adjoint g64 g32

[<Theory; MemberData(nameof unaryNames)>]
let ``Each unary op and its VJP in float32 agree with float64`` (name: string) =
    let op = find unaries name
    Gens.check 50 (Gen.zip Gens.shape Gens.seed) (fun (shape, seed) ->
        let g = Draw.generator seed
        let x = op.Inputs.Head g shape
        singleAgreesWithDouble $"{name} on {Shape.show shape}" op.Apply [| x |] (Draw.normal g shape))

[<Theory; MemberData(nameof binaryNames)>]
let ``Each binary op and its VJP in float32 agree with float64 on broadcastable shapes`` (name: string) =
    let op = find binaries name
    Gens.check 50 (Gen.zip (Gens.broadcastShapes 2) Gens.seed) (fun (shapes, seed) ->
        let g = Draw.generator seed
        let inputs =
            match op.Inputs with
            | [ drawA; drawB ] -> [| drawA g shapes[0]; drawB g shapes[1] |]
            | _ -> Draw.distinct g shapes
        let c = Draw.normal g (Shape.broadcast "test" shapes[0] shapes[1])
        singleAgreesWithDouble $"{name} on {Shape.show shapes[0]} and {Shape.show shapes[1]}" op.Apply inputs c)
