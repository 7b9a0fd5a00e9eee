/// Second order: the VJP function (x, c) ↦ J(x)ᵀ c of each op below satisfies the adjoint
/// identity itself (PyTorch gradgradcheck), which is what gradients of gradients rely on.
module Flows.Properties.Tensors.PrimitiveLaws.SecondOrder

open FsCheck
open FsCheck.FSharp
open Xunit
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

let private unary name inputs (f: Tensor -> Tensor) = { Name = name; Shapes = single; Inputs = inputs; Apply = fun _ xs -> f xs[0] }
let private binary name inputs (f: Tensor -> Tensor -> Tensor) = { Name = name; Shapes = pair; Inputs = inputs; Apply = fun _ xs -> f xs[0] xs[1] }

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
        Apply = fun s xs -> Tensor.where(pattern s[2], xs[0] * xs[1], xs[1].exp()) } ]

/// The names of the ops checked at second order, one theory case each.
let opNames : obj[] seq = ops |> Seq.map (fun op -> [| box op.Name |])

[<Theory; MemberData(nameof opNames)>]
let ``Each op's VJP is itself differentiable: the VJP of the VJP satisfies the adjoint identity`` (name: string) =
    let op = ops |> List.find (fun op -> op.Name = name)
    Gens.check 30 (Gen.zip op.Shapes Gens.seed) (fun (shapes, seed) ->
        let inputs = op.Inputs (Draw.generator seed) shapes
        let shown = shapes |> Array.map Shape.show |> String.concat ", "
        FiniteDifferences.checkVjpOfVjp $"{name} on {shown}" seed (op.Apply shapes) inputs)
