namespace Flows.Properties.Support

open System
open FsCheck
open FsCheck.FSharp
open Flows.Tensors

/// FsCheck generators for tensor laws: shapes, shapes that broadcast together, seeds; and the
/// runner that makes every property run replayable.
[<RequireQualifiedAccess>]
module Gens =

    /// A dimension size, 1 to 5.
    let size = Gen.choose (1, 5)

    /// A shape of rank `low` to `high` with dimensions 1 to 5.
    let shapeOfRank low high =
        gen {
            let! rank = Gen.choose (low, high)
            return! Gen.arrayOfLength rank size
        }

    /// A shape of rank 0 to 4 with dimensions 1 to 5.
    let shape = shapeOfRank 0 4

    /// A seed for the tensor data of one case (printed with the case, so a failure replays alone).
    let seed = Gen.choose (0, Int32.MaxValue)

    /// `count` shapes that broadcast together: each drops some leading dimensions of a common
    /// shape (rank differences) and turns some of the rest into 1 (stretched dimensions).
    let broadcastShapes count =
        gen {
            let! full = shape
            let operand =
                gen {
                    let! dropped = Gen.frequency [ 2, Gen.constant 0; 1, Gen.choose (0, full.Length) ]
                    let kept = full[dropped..]
                    let! ones = Gen.arrayOfLength kept.Length (Gen.frequency [ 3, Gen.constant false; 1, Gen.constant true ])
                    return Array.map2 (fun d one -> if one then 1 else d) kept ones
                }
            return! Gen.arrayOfLength count operand
        }

    /// A dimension index of a tensor of rank `rank` (at least 1), sometimes counted from the end.
    let dimOf rank =
        gen {
            let! d = Gen.choose (0, rank - 1)
            let! fromEnd = Gen.elements [ false; true ]
            return if fromEnd then d - rank else d
        }

    // The run seed: fixed so that every run checks the same cases; FLOWS_PROPERTY_SEED explores others.
    let private runSeed =
        match Environment.GetEnvironmentVariable "FLOWS_PROPERTY_SEED" with
        | null | "" -> 20240917UL
        | text -> UInt64.Parse text

    /// Checks `law` on `maxTest` cases drawn from `generator`; throws with the failing case.
    let check maxTest (generator: Gen<'Case>) (law: 'Case -> unit) =
        let config =
            Config.QuickThrowOnFailure
                .WithMaxTest(maxTest)
                .WithQuietOnSuccess(true)
                .WithReplay(Some { Rnd = Rnd runSeed; Size = None })
        Check.One(config, Prop.forAll (Arb.fromGen generator) law)

/// Random float64 tensors built from a seed through Generator, shaped to keep each op away from
/// its non-smooth points and domain edges.
[<RequireQualifiedAccess>]
module Draw =

    /// The generator of a case.
    let generator (seed: int) = Generator(uint64 seed)

    /// Standard normal float64 draws.
    let normal (g: Generator) (shape: int[]) = g.normal(shape, dtype = Dtype.Float64)

    /// Uniform float64 draws on [low, high).
    let uniform (g: Generator) (low: float) (high: float) (shape: int[]) = g.uniform(shape, low, high, dtype = Dtype.Float64)

    /// Draws with |x| ≥ margin: a random sign times margin plus a half-normal.
    let awayFromZero (g: Generator) (margin: float) (shape: int[]) =
        let z = (normal g shape).toArray64()
        Tensor.ofArray(z |> Array.map (fun v -> (if v < 0.0 then -1.0 else 1.0) * (margin + abs v)), shape)

    /// Normal draws moved at least `margin` away from each of `points` (points far enough apart).
    let avoiding (g: Generator) (points: float list) (margin: float) (shape: int[]) =
        let move v = if points |> List.exists (fun p -> abs (v - p) < margin) then v + 2.0 * margin else v
        Tensor.ofArray((normal g shape).toArray64() |> Array.map move, shape)

    /// Values of several tensors at least 0.06 apart from each other (no ties for max, min, argmax):
    /// a random permutation of a grid of spacing 0.1, plus noise of at most ±0.02.
    let distinct (g: Generator) (shapes: int[][]) =
        let total = shapes |> Array.sumBy Shape.numel
        let order = g.permutation(total).toArrayInt()
        let noise = (uniform g -0.02 0.02 [| total |]).toArray64()
        let values = Array.init total (fun i -> 0.1 * float (order[i] - total / 2) + noise[i])
        let offsets = shapes |> Array.scan (fun acc s -> acc + Shape.numel s) 0
        shapes |> Array.mapi (fun k s -> Tensor.ofArray(values[offsets[k] .. offsets[k + 1] - 1], s))

    /// Square matrices [batch..., n, n] far from singular: diagonal ±(1 to 2), off-diagonal
    /// entries N(0, 0.3²)/n, so that every triangle and the whole matrix are well conditioned.
    let wellConditioned (g: Generator) (batch: int[]) (n: int) =
        let shape = Array.append batch [| n; n |]
        let off = (normal g shape).toArray64()
        let diag = (awayFromZero g 1.0 shape).toArray64()
        let values =
            Array.init off.Length (fun i ->
                let row, col = (i / n) % n, i % n
                if row = col then (if diag[i] < 0.0 then -1.0 else 1.0) * min 2.0 (abs diag[i]) else 0.3 * off[i] / float n)
        Tensor.ofArray(values, shape)
