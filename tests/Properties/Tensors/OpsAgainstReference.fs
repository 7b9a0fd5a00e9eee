/// Ops against independent references: matmul, slogdet, inverse and triangular solves against
/// MathNet.Numerics in float64; broadcast adjoints, reductions, cumsum and searchsorted against
/// plain F# loops over multi-indices.
module Flows.Properties.Tensors.OpsAgainstReference

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

// ------------------------------------------------------------------ multi-index helpers

/// The multi-index of flat position `flat` in a row-major `shape`.
let private unravel (shape: int[]) (flat: int) =
    let index = Array.zeroCreate shape.Length
    let mutable rest = flat
    for d in shape.Length - 1 .. -1 .. 0 do
        index[d] <- rest % shape[d]
        rest <- rest / shape[d]
    index

/// The flat position of a multi-index in a row-major `shape`.
let private ravel (shape: int[]) (index: int[]) = Array.fold2 (fun acc n i -> acc * n + i) 0 shape index

/// The flat position in `operand` read by broadcasting at multi-index `index` of the result.
let private broadcastAt (operand: int[]) (index: int[]) =
    let offset = index.Length - operand.Length
    ravel operand (operand |> Array.mapi (fun j n -> if n = 1 then 0 else index[offset + j]))

/// The matrix of `t` (shape [batch..., rows, cols]) that broadcasting reads at result batch index `batch`.
let private matrixAt (t: Tensor) (batch: int[]) =
    let rows, cols = t.shape[t.dim - 2], t.shape[t.dim - 1]
    let start = broadcastAt t.shape[.. t.dim - 3] batch * rows * cols
    let data = t.toArray64()
    Matrix<float>.Build.Dense(rows, cols, fun i j -> data[start + i * cols + j])

/// Checks every matrix of a batched result against `reference batchIndex`.
let private eachMatrix what tolerance (result: Tensor) (reference: int[] -> Matrix<float>) =
    let batchShape = result.shape[.. result.dim - 3]
    let rows, cols = result.shape[result.dim - 2], result.shape[result.dim - 1]
    let data = result.toArray64()
    for b in 0 .. Shape.numel batchShape - 1 do
        let expected = reference (unravel batchShape b)
        let actual = Array.init (rows * cols) (fun k -> data[b * rows * cols + k])
        Close.arrays $"{what}, matrix {b}" tolerance (Array.init (rows * cols) (fun k -> expected[k / cols, k % cols])) actual

// ------------------------------------------------------------------ linear algebra

let private batched =
    gen {
        let! shapes = Gens.broadcastShapes 2
        let batches = shapes |> Array.map (fun s -> s[max 0 (s.Length - 2) ..])
        let! m, k, n = Gen.zip3 Gens.size Gens.size Gens.size
        let! seed = Gens.seed
        return batches[0], batches[1], (m, k, n), seed
    }

[<Fact>]
let ``Batched matmul with broadcast batch dimensions agrees with MathNet`` () =
    Gens.check 100 batched (fun (batchA, batchB, (m, k, n), seed) ->
        let g = Draw.generator seed
        let a, b = Draw.normal g (Array.append batchA [| m; k |]), Draw.normal g (Array.append batchB [| k; n |])
        let c = a.matmul b
        Close.shape "matmul" (Array.append (Shape.broadcast "reference" batchA batchB) [| m; n |]) c
        eachMatrix "matmul" Tolerance.float64 c (fun batch -> matrixAt a batch * matrixAt b batch))

let private squares = Gen.zip3 (Gens.shapeOfRank 0 2) Gens.size Gens.seed

// Well conditioned with random signs, plus a generic perturbation.
let private generic (g: Generator) batch n = Draw.wellConditioned g batch n + Draw.normal g (Array.append batch [| n; n |]) * 0.5

[<Fact>]
let ``slogdet agrees with MathNet's determinant in sign and log magnitude`` () =
    Gens.check 100 squares (fun (batch, n, seed) ->
        let a = generic (Draw.generator seed) batch n
        let sign, logAbs = a.slogdet()
        Close.shape "sign" batch sign
        Close.shape "log|det|" batch logAbs
        let signs, logs = sign.toArray64(), logAbs.toArray64()
        for b in 0 .. Shape.numel batch - 1 do
            let det = (matrixAt a (unravel batch b)).Determinant()
            Close.scalar $"sign of det, matrix {b}" Tolerance.float64 (float (Math.Sign det)) signs[b]
            Close.scalar $"log|det|, matrix {b}" Tolerance.float64 (log (abs det)) logs[b])

[<Fact>]
let ``inverse agrees with MathNet's inverse`` () =
    Gens.check 100 squares (fun (batch, n, seed) ->
        let a = generic (Draw.generator seed) batch n
        eachMatrix "inverse" Tolerance.float64 (a.inverse()) (fun b -> (matrixAt a b).Inverse()))

[<Fact>]
let ``solveTriangular agrees with MathNet's solve of the triangle it reads`` () =
    let variants = Gen.zip3 (Gen.elements [ false; true ]) (Gen.elements [ false; true ]) (Gen.elements [ false; true ])
    Gens.check 100 (Gen.zip batched variants) (fun ((batchA, batchB, (n, cols, _), seed), (upper, transpose, unit)) ->
        let g = Draw.generator seed
        let a = Draw.wellConditioned g batchA n + Draw.normal g (Array.append batchA [| n; n |]) * 0.1
        let b = Draw.normal g (Array.append batchB [| n; cols |])
        let x = a.solveTriangular(b, upper, transpose, unit)
        // The triangle the solve reads, with a unit diagonal if asked, transposed if asked.
        let effective (m: Matrix<float>) =
            let t = Matrix<float>.Build.Dense(n, n, fun i j ->
                if i = j then (if unit then 1.0 else m[i, j]) elif (j > i) = upper then m[i, j] else 0.0)
            if transpose then t.Transpose() else t
        eachMatrix $"solveTriangular (upper {upper}, transpose {transpose}, unit {unit})" Tolerance.float64 x
            (fun batch -> (effective (matrixAt a batch)).Solve(matrixAt b batch)))

// ------------------------------------------------------------------ broadcast adjoints

// Each binary op with its partial derivatives in plain floats.
let private partials : (string * (Tensor -> Tensor -> Tensor) * (float -> float -> float * float)) list =
    [ "a + b", (+), (fun _ _ -> 1.0, 1.0)
      "a - b", (-), (fun _ _ -> 1.0, -1.0)
      "a * b", (*), (fun a b -> b, a)
      "a / b", (/), (fun a b -> 1.0 / b, -a / (b * b))
      "max(a, b)", (fun a b -> a.max b), (fun a b -> if a >= b then 1.0, 0.0 else 0.0, 1.0)
      "min(a, b)", (fun a b -> a.min b), (fun a b -> if a <= b then 1.0, 0.0 else 0.0, 1.0)
      "atan2(a, b)", (fun a b -> a.atan2 b), (fun a b -> b / (a * a + b * b), -a / (a * a + b * b))
      "Pow(a, b)", (fun a b -> Tensor.Pow(a, b)), (fun a b -> b * a ** (b - 1.0), a ** b * log a) ]

[<Fact>]
let ``Broadcast adjoints come back in each operand's shape, summed over the broadcast elements`` () =
    Gens.check 100 (Gen.zip (Gens.broadcastShapes 2) Gens.seed) (fun (shapes, seed) ->
        let g = Draw.generator seed
        // Tie-free, then shifted to at least 0.5, so that max, min and Pow are smooth everywhere drawn.
        let drawn = Draw.distinct g shapes
        let lowest = drawn |> Array.map (fun t -> t.min().toScalar()) |> Array.min
        let a, b = drawn[0] + (0.5 - lowest), drawn[1] + (0.5 - lowest)
        let outShape = Shape.broadcast "reference" a.shape b.shape
        let c = Draw.normal g outShape
        let av, bv, cv = a.toArray64(), b.toArray64(), c.toArray64()
        for name, op, partial in partials do
            let _, pullback = Ad.vjpN (fun xs -> [| op xs[0] xs[1] |]) [| a; b |]
            let adjoints = pullback [| c |]
            let ga, gb = Array.zeroCreate a.numel, Array.zeroCreate b.numel
            for o in 0 .. cv.Length - 1 do
                let index = unravel outShape o
                let i, j = broadcastAt a.shape index, broadcastAt b.shape index
                let da, db = partial av[i] bv[j]
                ga[i] <- ga[i] + cv[o] * da
                gb[j] <- gb[j] + cv[o] * db
            Close.values $"{name}: adjoint of a {Shape.show a.shape}" Tolerance.float64 a.shape ga adjoints[0]
            Close.values $"{name}: adjoint of b {Shape.show b.shape}" Tolerance.float64 b.shape gb adjoints[1])

// ------------------------------------------------------------------ reductions and scans

/// A shape of rank 1 to 4, a dimension of it, a flag and a seed.
let private alongDim =
    gen {
        let! shape = Gens.shapeOfRank 1 4
        let! d = Gen.choose (0, shape.Length - 1)
        let! flag = Gen.elements [ false; true ]
        let! seed = Gens.seed
        return shape, d, flag, seed
    }

/// For each slice along `dim` (in result order), the flat positions of its elements in order.
let private slices (shape: int[]) (dim: int) =
    let n = shape[dim]
    let inner = Shape.numel shape[dim + 1 ..]
    let outer = Shape.numel shape[.. dim - 1]
    Array.init (outer * inner) (fun s -> Array.init n (fun j -> (s / inner * n + j) * inner + s % inner))

[<Fact>]
let ``sum, max, min, argmax and argmin along a dimension agree with loops, ties going to the first`` () =
    Gens.check 100 alongDim (fun (shape, d, keepDim, seed) ->
        // Small integers, so that ties are common.
        let x = (Draw.generator seed).integers(shape, 0, 4).cast Dtype.Float64
        let v = x.toArray64()
        let rows = slices shape d |> Array.map (Array.map (fun k -> v[k]))
        let first pick (row: float[]) = row |> Array.findIndex (fun e -> e = pick row)
        let reduced = Shape.reduceDim shape d keepDim
        Close.values "sum" Tolerance.float64 reduced (rows |> Array.map Array.sum) (x.sum(d, keepDim))
        Close.values "max" Tolerance.float64 reduced (rows |> Array.map Array.max) (x.max(d, keepDim))
        Close.values "min" Tolerance.float64 reduced (rows |> Array.map Array.min) (x.min(d, keepDim))
        Close.values "argmax" Tolerance.float64 reduced (rows |> Array.map (first Array.max >> float)) (x.argmax(d, keepDim))
        Close.values "argmin" Tolerance.float64 reduced (rows |> Array.map (first Array.min >> float)) (x.argmin(d, keepDim)))

[<Fact>]
let ``logsumexp and softmax are exact on slices a thousand below the global maximum`` () =
    Gens.check 100 alongDim (fun (shape, d, _, seed) ->
        let z = (Draw.normal (Draw.generator seed) shape).toArray64()
        let all = slices shape d
        // Slice s sits 1000 s below slice 0: exp(x - global max) underflows for every slice but the first.
        let v = Array.copy z
        all |> Array.iteri (fun s row -> for k in row do v[k] <- z[k] - 1000.0 * float s)
        let x = Tensor.ofArray(v, shape)
        let expected =
            all |> Array.map (fun row ->
                let m = row |> Array.map (fun k -> v[k]) |> Array.max
                m + log (row |> Array.sumBy (fun k -> exp (v[k] - m))))
        Close.values "logsumexp" Tolerance.float64 (Shape.reduceDim shape d false) expected (x.logsumexp d)
        let softmax = Array.zeroCreate v.Length
        all |> Array.iteri (fun s row -> for k in row do softmax[k] <- exp (v[k] - expected[s]))
        Close.values "softmax" Tolerance.float64 shape softmax (x.softmax d))

[<Fact>]
let ``cumsum in both directions agrees with running sums`` () =
    Gens.check 100 alongDim (fun (shape, d, reverse, seed) ->
        let x = Draw.normal (Draw.generator seed) shape
        let v = x.toArray64()
        let expected = Array.zeroCreate v.Length
        for row in slices shape d do
            let order = if reverse then Array.rev row else row
            order |> Array.fold (fun acc k -> expected[k] <- acc + v[k]; expected[k]) 0.0 |> ignore
        Close.values $"cumsum (reverse {reverse})" Tolerance.float64 shape expected (x.cumsum(d, reverse)))

[<Fact>]
let ``searchsorted agrees with counting the entries below (or at or below) each value`` () =
    let cases = gen {
        let! lead = Gens.shapeOfRank 0 2
        let! k, m = Gen.zip Gens.size Gens.size
        let! shared = Gen.elements [ false; true ]
        let! seed = Gens.seed
        return lead, k, m, shared, seed }
    Gens.check 100 cases (fun (lead, k, m, shared, seed) ->
        let g = Draw.generator seed
        // Sorted rows of small integers (repeats), and values that hit, miss and straddle them.
        let rows = if shared then 1 else Shape.numel lead
        let sorted = (g.integers([| rows; k |], 0, 5).toArray64()) |> Array.chunkBySize k |> Array.collect Array.sort
        let values = (g.integers(Array.append lead [| m |], -2, 14).toArray64()) |> Array.map (fun v -> v / 2.0)
        let sortedShape = if shared then [| k |] else Array.append lead [| k |]
        let s, x = Tensor.ofArray(sorted, sortedShape), Tensor.ofArray(values, Array.append lead [| m |])
        for right in [ false; true ] do
            let expected =
                values |> Array.mapi (fun i v ->
                    let row = if shared then 0 else i / m
                    sorted[row * k .. row * k + k - 1] |> Array.filter (fun e -> if right then e <= v else e < v) |> Array.length |> float)
            Close.values $"searchsorted (right {right}) of {Shape.show x.shape} in {Shape.show s.shape}" Tolerance.float64 x.shape expected
                (s.searchsorted(x, right)))

[<Fact>]
let ``column sums of tall matrices (the GEMM path) agree with plain loops`` () =
    for rows, cols in [ 64, 8; 200, 37; 512, 64; 1000, 3 ] do
        let x = (Generator(uint64 (rows * cols))).normal([| rows; cols |])
        let values = x.toArray64()
        let expected = Array.init cols (fun j -> Seq.sum (seq { for i in 0 .. rows - 1 -> values[i * cols + j] }))
        Close.values $"sum(0) of [{rows}, {cols}]" Tolerance.float32 [| cols |] expected (x.sum(0))
