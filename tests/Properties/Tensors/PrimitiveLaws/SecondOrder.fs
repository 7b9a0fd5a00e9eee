/// Second order: the VJP function (x, c) ↦ J(x)ᵀ c of each op below satisfies the adjoint
/// identity itself (PyTorch gradgradcheck), which is what gradients of gradients rely on.
module Flows.Properties.Tensors.PrimitiveLaws.SecondOrder

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Properties.Support

/// An op checked at second order: its inputs' shapes from a generator, drawn from a seed.
type private Op =
    { Name: string
      Shapes: Gen<int[][]>
      Inputs: Generator -> int[][] -> Tensor[]
      Apply: int[][] -> Tensor[] -> Tensor }

let private normals g (shapes: int[][]) = shapes |> Array.map (Draw.normal g)
let private single = Gens.shape |> Gen.map (fun s -> [| s |])
let private pair = Gens.broadcastShapes 2

let private unary name inputs (f: Tensor -> Tensor) =
    { Name = name; Shapes = single; Inputs = inputs; Apply = fun _ xs -> f xs[0] }
let private binary name inputs (f: Tensor -> Tensor -> Tensor) =
    { Name = name; Shapes = pair; Inputs = inputs; Apply = fun _ xs -> f xs[0] xs[1] }

let private matmulShapes =
    gen {
        let! batches = Gens.broadcastShapes 2
        let! m, k, n = Gen.zip3 Gens.size Gens.size Gens.size
        let batch (s: int[]) = s[max 0 (s.Length - 2) ..]
        return [| Array.append (batch batches[0]) [| m; k |]; Array.append (batch batches[1]) [| k; n |] |]
    }

// A fixed 0/1 condition of the given shape (a constant, as where's condition is).
let private pattern (shape: int[]) =
    Tensor.ofArray(Array.init (Shape.numel shape) (fun i -> float ((i * 7 + 3) % 3 % 2)), shape)

let private positive g shape = Draw.uniform g 0.3 3.0 shape

// An op along the rows of a matrix-shaped (rank 1 to 3) input.
let private rows name (f: Tensor -> Tensor) =
    { Name = name; Shapes = Gens.shapeOfRank 1 3 |> Gen.map (fun s -> [| s |]); Inputs = normals; Apply = fun _ xs -> f xs[0] }

// Indices along dimension 0 of `shape`, four of them per column, so that they repeat.
let private repeats (shape: int[]) =
    let indexShape = Array.append [| 4 |] shape[1..]
    Tensor.ofArray(Array.init (Shape.numel indexShape) (fun i -> (i * 3 + 1) % shape[0]), indexShape)

// A well-conditioned matrix (or batch of them) of a square shape [..., n, n].
let private square g (shape: int[]) = Draw.wellConditioned g shape[.. shape.Length - 3] shape[shape.Length - 1]

let private squareShapes =
    Gen.zip (Gens.shapeOfRank 0 1) Gens.size |> Gen.map (fun (batch, n) -> [| Array.append batch [| n; n |] |])

let private triangularShapes =
    Gen.zip Gens.size Gens.size |> Gen.map (fun (n, k) -> [| [| n; n |]; [| n; k |] |])

let private ops =
    [ binary "a + b" normals (+)
      binary "a - b" normals (-)
      binary "a * b" normals (*)
      binary "a / b" (fun g s -> [| Draw.normal g s[0]; Draw.awayFromZero g 0.5 s[1] |]) (/)
      { Name = "matmul"; Shapes = matmulShapes; Inputs = normals; Apply = fun _ xs -> xs[0].matmul xs[1] }
      unary "tanh" normals _.tanh()
      unary "sigmoid" normals _.sigmoid()
      unary "softplus" (fun g s -> [| Draw.normal g s[0] * 3.0 |]) _.softplus()
      unary "exp" normals _.exp()
      unary "log" (fun g s -> [| Draw.uniform g 0.3 3.0 s[0] |]) _.log()
      unary "sum()" normals _.sum()
      { Name = "sum(dim)"; Shapes = Gens.shapeOfRank 1 4 |> Gen.map (fun s -> [| s |]); Inputs = normals
        Apply = fun _ xs -> xs[0].sum(xs[0].dim - 1, true) * xs[0] }
      { Name = "where"; Shapes = Gens.broadcastShapes 3; Inputs = (fun g s -> normals g s[.. 1])
        // Non-linear branches, so that the second-order adjoints must be routed by the mask too.
        Apply = fun s xs -> Tensor.where(pattern s[2], xs[0] * xs[1], xs[1].exp()) }
      // Beyond the ops above, which every flow differentiates twice: the rest of the catalogue.
      binary "Pow(a, b)" (fun g s -> [| positive g s[0]; Draw.normal g s[1] |]) (fun a b -> Tensor.Pow(a, b))
      binary "atan2(a, b)" (fun g s -> [| Draw.normal g s[0]; Draw.awayFromZero g 0.3 s[1] |]) (fun a b -> a.atan2 b)
      binary "max(a, b)" Draw.distinct (fun a b -> a.max(b) * a)
      binary "min(a, b)" Draw.distinct (fun a b -> a.min(b) * b)
      unary "sqrt" (fun g s -> [| positive g s[0] |]) _.sqrt()
      unary "reciprocal" (fun g s -> [| Draw.awayFromZero g 0.5 s[0] |]) _.reciprocal()
      unary "log1p" (fun g s -> [| Draw.uniform g -0.7 3.0 s[0] |]) _.log1p()
      unary "expm1" normals _.expm1()
      unary "sin" normals _.sin()
      unary "cos" normals _.cos()
      unary "atan" normals _.atan()
      unary "Pow(x, 3)" normals (fun x -> Tensor.Pow(x, 3.0))
      unary "elu" (fun g s -> [| Draw.awayFromZero g 0.1 s[0] |]) _.elu(1.3)
      unary "abs" (fun g s -> [| Draw.awayFromZero g 0.1 s[0] |]) (fun x -> x.abs() * x)
      unary "custom cube" normals Linalg.cube
      rows "softmax" _.softmax(-1)
      rows "logsumexp" (fun x -> x.logsumexp(-1, true) * x)
      rows "cumsum" (fun x -> x.cumsum(0, true).square())
      { Name = "max(dim)"; Shapes = Gens.shapeOfRank 1 3 |> Gen.map (fun s -> [| s |]); Inputs = Draw.distinct
        Apply = fun _ xs -> xs[0].max(0, true) * xs[0] }
      { Name = "gather"; Shapes = Gens.shapeOfRank 1 3 |> Gen.map (fun s -> [| s |]); Inputs = normals
        Apply = fun s xs -> xs[0].gather(0, repeats s[0]).square() }
      { Name = "solveTriangular"; Shapes = triangularShapes; Inputs = (fun g s -> [| square g s[0]; Draw.normal g s[1] |])
        Apply = fun _ xs -> xs[0].solveTriangular(xs[1], true, true) }
      { Name = "inverse"; Shapes = squareShapes; Inputs = (fun g s -> [| square g s[0] |])
        Apply = fun _ xs -> xs[0].inverse() }
      { Name = "slogdet"; Shapes = squareShapes; Inputs = (fun g s -> [| square g s[0] |])
        Apply = fun _ xs -> snd (xs[0].slogdet()) } ]

/// The names of the ops checked at second order, one theory case each.
let opNames : obj[] seq = ops |> Seq.map (fun op -> [| box op.Name |])

[<Theory; MemberData(nameof opNames)>]
let ``Each op's VJP is itself differentiable: the VJP of the VJP satisfies the adjoint identity`` (name: string) =
    let op = ops |> List.find (fun op -> op.Name = name)
    Gens.check 60 (Gen.zip op.Shapes Gens.seed) (fun (shapes, seed) ->
        let inputs = op.Inputs (Draw.generator seed) shapes
        let shown = shapes |> Array.map Shape.show |> String.concat ", "
        FiniteDifferences.checkVjpOfVjp $"{name} on {shown}" seed (op.Apply shapes) inputs)
