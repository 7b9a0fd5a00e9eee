/// The seeded generators: the same seed gives the same numbers, different seeds and successive
/// draws differ, and each distribution's sample moments and support are what it promises.
module Flows.Properties.Tensors.GeneratorStatistics

open Xunit
open FsCheck
open FsCheck.FSharp
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// Draws per sample: standard errors are about 1/140 of the spread.
let private n = 20000

let private mean (xs: float[]) = Array.average xs
let private std (xs: float[]) = let m = mean xs in sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

/// Fails unless `actual` is within 5 standard errors of `expected`.
let private within what (expected: float) (standardError: float) (actual: float) =
    Close.scalar $"{what} (5 standard errors of {standardError})" { Abs = 5.0 * standardError; Rel = 0.0 } expected actual

let private seedAndParameters = Gen.zip3 Gens.seed (Gen.choose (-20, 20)) (Gen.choose (1, 30))

[<Fact>]
let ``The same seed gives the same numbers, successive draws and different seeds give others`` () =
    Gens.check 30 (Gen.zip Gens.seed Gens.shape) (fun (seed, shape) ->
        let draw (s: int) = (Generator(uint64 s)).normal(Array.append shape [| 2 |], dtype = Dtype.Float64).toArray64()
        Close.arrays "same seed" { Abs = 0.0; Rel = 0.0 } (draw seed) (draw seed)
        if draw seed = draw (seed ^^^ 1) then failwith $"seeds {seed} and {seed ^^^ 1} gave the same numbers"
        let g = Generator(uint64 seed)
        let first = g.uniform(shape, dtype = Dtype.Float64).toArray64()
        if first = g.uniform(shape, dtype = Dtype.Float64).toArray64() then failwith "two successive draws were equal"
        if g.split().normal([| 4 |]).toArray64() = g.normal([| 4 |]).toArray64() then failwith "a split generator repeats its parent")

[<Fact>]
let ``float32 draws are the float64 draws of the same seed, rounded`` () =
    Gens.check 30 (Gen.zip Gens.seed Gens.shape) (fun (seed, shape) ->
        let wide = Generator(uint64 seed).normal(shape, dtype = Dtype.Float64).toArray64()
        let narrow = Generator(uint64 seed).normal(shape, dtype = Dtype.Float32).toArray64()
        Close.arrays "float32 vs float64 stream" { Abs = 0.0; Rel = 0.0 } (wide |> Array.map (float32 >> float)) narrow)

[<Fact>]
let ``normal draws have the requested mean and standard deviation`` () =
    Gens.check 20 seedAndParameters (fun (seed, m, s) ->
        let mu, sigma = float m / 4.0, float s / 10.0
        let x = Generator(uint64 seed).normal([| n |], mu, sigma, Dtype.Float64).toArray64()
        within "mean" mu (sigma / sqrt (float n)) (mean x)
        within "std" sigma (sigma / sqrt (2.0 * float n)) (std x))

[<Fact>]
let ``uniform draws stay in [low, high) with the mean and spread of the uniform law`` () =
    Gens.check 20 seedAndParameters (fun (seed, m, s) ->
        let low, high = float m / 4.0, float m / 4.0 + float s / 10.0
        let x = Generator(uint64 seed).uniform([| n |], low, high, Dtype.Float64).toArray64()
        if not (x |> Array.forall (fun v -> v >= low && v < high)) then failwith $"a draw fell outside [{low}, {high})"
        let spread = (high - low) / sqrt 12.0
        within "mean" ((low + high) / 2.0) (spread / sqrt (float n)) (mean x)
        // The variance of a uniform sample variance: (b - a)⁴/180 per draw.
        within "std" spread ((high - low) ** 2.0 / sqrt (180.0 * float n) / (2.0 * spread)) (std x))

[<Fact>]
let ``rademacher draws are ±1 with mean zero`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let x = Generator(uint64 seed).rademacher([| n |], Dtype.Float64).toArray64()
        if not (x |> Array.forall (fun v -> v = 1.0 || v = -1.0)) then failwith "a draw was not ±1"
        within "mean" 0.0 (1.0 / sqrt (float n)) (mean x))

[<Fact>]
let ``bernoulli draws are 0 or 1 at rate p`` () =
    Gens.check 20 (Gen.zip Gens.seed (Gen.choose (0, 20))) (fun (seed, k) ->
        let p = float k / 20.0
        let x = Generator(uint64 seed).bernoulli([| n |], p, Dtype.Float64).toArray64()
        if not (x |> Array.forall (fun v -> v = 0.0 || v = 1.0)) then failwith "a draw was not 0 or 1"
        // At p = 0 or 1 the rate must be exact.
        within "rate" p (sqrt (p * (1.0 - p) / float n)) (mean x))

[<Fact>]
let ``integers fall in [low, high), hit every value and have the uniform mean`` () =
    Gens.check 20 seedAndParameters (fun (seed, low, width) ->
        let high = low + width
        let x = Generator(uint64 seed).integers([| n |], low, high).toArrayInt()
        if not (x |> Array.forall (fun v -> v >= low && v < high)) then failwith $"a draw fell outside [{low}, {high})"
        if (Array.distinct x).Length <> width then failwith $"not every value of [{low}, {high}) was drawn"
        let spread = sqrt (float (width * width - 1) / 12.0)
        within "mean" (float (low + high - 1) / 2.0) (max spread 1e-12 / sqrt (float n)) (x |> Array.averageBy float))

[<Fact>]
let ``permutation is a permutation of 0 .. n-1`` () =
    Gens.check 30 (Gen.zip Gens.seed (Gen.choose (0, 50))) (fun (seed, size) ->
        let p = Generator(uint64 seed).permutation(size).toArrayInt()
        if Array.sort p <> Array.init size id then failwith $"{p} is not a permutation of 0 .. {size - 1}")

[<Fact>]
let ``float32 uniform draws stay below high even where rounding to float32 would reach it`` () =
    // A range a few float32 ulps wide: rounding lo + (hi - lo) u to float32 lands on hi for u near 1.
    Gens.check 20 (Gen.zip Gens.seed (Gen.choose (1, 6))) (fun (seed, ulps) ->
        let low = 1.0
        let high = low + float ulps * 2.0 ** -23.0
        let x = Generator(uint64 seed).uniform([| n |], low, high, Dtype.Float32).toArray32()
        match x |> Array.tryFind (fun v -> not (v >= float32 low && v < float32 high)) with
        | Some v -> failwith $"a float32 draw {v:R} fell outside [{low:R}, {high:R})"
        | None -> ())
