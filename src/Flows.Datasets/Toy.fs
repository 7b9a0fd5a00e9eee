namespace Flows.Datasets

open System
open System.Numerics.Tensors
open Flows
open Flows.Tensors
open Flows.Distributions

/// Seeded 2-D toy data sets; where an exact log-density exists it comes with the sampler.
[<RequireQualifiedAccess>]
module Toy =

    let private rows (n: int) (dtype: Dtype) (xs: float[]) (ys: float[]) =
        Tensor.ofArray(Array.init (2 * n) (fun i -> if i % 2 = 0 then xs[i / 2] else ys[i / 2]), [| n; 2 |]).cast dtype

    // The first m elements of an array, to read or to write (rented arrays may be longer).
    let private ro (m: int) (a: float[]) = ReadOnlySpan(a, 0, m)
    let private rw (m: int) (a: float[]) = Span(a, 0, m)

    /// Two moons (normflows' TwoMoons target), exact samples. In polar coordinates the density is
    /// exp(−½((r−2)/0.2)²)·m(z₁) with m(z₁) = exp(−½((z₁−2)/0.3)²) + exp(−½((z₁+2)/0.3)²) ≤ 1 + e⁻⁸⁸,
    /// and dz = r dr dθ: propose r ~ N(2, 0.2²), θ uniform, and accept with probability r·m(z₁)/3
    /// (r ≤ 3 holds but for 5σ tails, below 10⁻⁶). About 30% of proposals are accepted, ten times
    /// the rate of a uniform box, which matters because training draws a fresh batch every step.
    let twoMoons (gen: Generator) (n: int) (dtype: Dtype) =
        Guard.positive (nameof n) n
        let accepted = Array.zeroCreate<float> (2 * n)
        let mutable count = 0
        while count < n do
            let m = 4 * n + 64
            let r = gen.normal([| m |], 2.0, 0.2, Dtype.Float64).toArray64()
            let theta = gen.uniform([| m |], 0.0, 2.0 * Math.PI, Dtype.Float64).toArray64()
            let u = gen.uniform([| m |], dtype = Dtype.Float64).toArray64()
            // Every proposal's point and bumps at once, in vectors: per-element cos, sin and exp were
            // most of drawing a batch, which training does beside every step. θ's array becomes y, and
            // the rest is rented: a batch's garbage is collected while the step waits.
            let pool = Buffers.ArrayPool<float>.Shared
            let xs, bumpArray, otherArray = pool.Rent m, pool.Rent m, pool.Rent m
            try
                TensorPrimitives.Cos(ro m theta, rw m xs)
                TensorPrimitives.Multiply(ro m xs, ro m r, rw m xs)
                TensorPrimitives.Sin(ro m theta, rw m theta)
                TensorPrimitives.Multiply(ro m theta, ro m r, rw m theta)
                let bump (centre: float) (into: float[]) =
                    // exp(−½((x − c)/0.3)²)
                    TensorPrimitives.Add(ro m xs, -centre, rw m into)
                    TensorPrimitives.Multiply(ro m into, ro m into, rw m into)
                    TensorPrimitives.Multiply(ro m into, -0.5 / (0.3 * 0.3), rw m into)
                    TensorPrimitives.Exp(ro m into, rw m into)
                bump 2.0 bumpArray
                bump -2.0 otherArray
                TensorPrimitives.Add(ro m bumpArray, ro m otherArray, rw m bumpArray)
                let mutable i = 0
                while i < m && count < n do
                    if r[i] > 0.0 && 3.0 * u[i] < r[i] * bumpArray[i] then
                        accepted[2 * count] <- xs[i]
                        accepted[2 * count + 1] <- theta[i]
                        count <- count + 1
                    i <- i + 1
            finally
                pool.Return xs
                pool.Return bumpArray
                pool.Return otherArray
        Tensor.ofArray(accepted, [| n; 2 |]).cast dtype

    /// The normalised two-moons log-density (log normaliser by quadrature on [−4, 4]², once).
    let twoMoonsLogDensity =
        let logZ = lazy (Targets.logNormaliser 4.0 800 Targets.twoMoons)
        fun (z: Tensor) -> Targets.twoMoons z - logZ.Force()

    /// Centres of `k` Gaussians evenly spaced on a circle of `radius`, the first on the x axis.
    let polygonCentres (k: int) (radius: float) =
        Array.init k (fun i ->
            let a = 2.0 * Math.PI * float i / float k
            [| radius * cos a; radius * sin a |])

    /// Equal mixture of isotropic Gaussians at `centres` with standard deviation `std`.
    let gaussians (centres: float[][]) (std: float) (gen: Generator) (n: int) (dtype: Dtype) =
        let which = gen.integers([| n |], 0, centres.Length).toArrayInt()
        let noise = gen.normal([| n; 2 |], dtype = Dtype.Float64).toArray64()
        rows n dtype (Array.init n (fun i -> centres[which[i]][0] + std * noise[2 * i]))
            (Array.init n (fun i -> centres[which[i]][1] + std * noise[2 * i + 1]))

    /// The CNF tutorials' hexagon: 6 Gaussians on a circle of radius 4 (std 0.5).
    let hexagon (gen: Generator) (n: int) (dtype: Dtype) = gaussians (polygonCentres 6 4.0) 0.5 gen n dtype

    /// ffjord's 8 Gaussians: centres on a circle of radius 4/√2, standard deviation 0.5/√2.
    let eightGaussians (gen: Generator) (n: int) (dtype: Dtype) =
        gaussians (polygonCentres 8 (4.0 / sqrt 2.0)) (0.5 / sqrt 2.0) gen n dtype

    /// The exact 8-Gaussians log-density (the mixture `eightGaussians` samples).
    let eightGaussiansLogDensity (z: Tensor) = Targets.gaussianMixture (polygonCentres 8 (4.0 / sqrt 2.0)) (0.5 / sqrt 2.0) z

    /// Two concentric circles (radii 1 and 0.5) with small noise.
    let circles (gen: Generator) (n: int) (dtype: Dtype) =
        let u = gen.uniform([| n |], 0.0, 2.0 * Math.PI, Dtype.Float64).toArray64()
        let which = gen.bernoulli([| n |], 0.5, Dtype.Float64).toArray64()
        let noise = gen.normal([| n; 2 |], 0.0, 0.04, Dtype.Float64).toArray64()
        let r i = if which[i] > 0.5 then 1.0 else 0.5
        rows n dtype (Array.init n (fun i -> r i * cos u[i] + noise[2 * i])) (Array.init n (fun i -> r i * sin u[i] + noise[2 * i + 1]))

    /// ffjord's checkerboard: alternating unit squares on [−4, 4]².
    let checkerboard (gen: Generator) (n: int) (dtype: Dtype) =
        let x1 = gen.uniform([| n |], -2.0, 2.0, Dtype.Float64).toArray64()
        let u = gen.uniform([| n |], dtype = Dtype.Float64).toArray64()
        let k = gen.integers([| n |], 0, 2).toArrayInt()
        let floorMod2 (v: float) = let m = floor v % 2.0 in if m < 0.0 then m + 2.0 else m
        let x2 = Array.init n (fun i -> u[i] - 2.0 * float k[i] + floorMod2 x1[i])
        rows n dtype (Array.map ((*) 2.0) x1) (Array.map ((*) 2.0) x2)

    /// Five pinwheel arms (ffjord's toy data).
    let pinwheel (gen: Generator) (n: int) (dtype: Dtype) =
        let arms, rate = 5, 0.25
        let label = gen.integers([| n |], 0, arms).toArrayInt()
        let f = gen.normal([| n; 2 |], dtype = Dtype.Float64).toArray64()
        let xs = Array.zeroCreate n
        let ys = Array.zeroCreate n
        for i in 0 .. n - 1 do
            let a, b = f[2 * i] * 0.3 + 1.0, f[2 * i + 1] * 0.05
            let angle = 2.0 * Math.PI * float label[i] / float arms + rate * exp a
            xs[i] <- 2.0 * (a * cos angle - b * sin angle)
            ys[i] <- 2.0 * (a * sin angle + b * cos angle)
        rows n dtype xs ys

    /// Two interleaved spirals.
    let twoSpirals (gen: Generator) (n: int) (dtype: Dtype) =
        let t = gen.uniform([| n |], dtype = Dtype.Float64).toArray64()
        let side = gen.bernoulli([| n |], 0.5, Dtype.Float64).toArray64()
        let noise = gen.normal([| n; 2 |], 0.0, 0.1, Dtype.Float64).toArray64()
        let r i = sqrt t[i] * 540.0 * (2.0 * Math.PI) / 360.0
        let s i = if side[i] > 0.5 then 1.0 else -1.0
        rows n dtype (Array.init n (fun i -> s i * -cos (r i) * r i / 3.0 + noise[2 * i]))
            (Array.init n (fun i -> s i * sin (r i) * r i / 3.0 + noise[2 * i + 1]))

    /// A 2-D swiss roll.
    let swissRoll (gen: Generator) (n: int) (dtype: Dtype) =
        let t = gen.uniform([| n |], 1.5 * Math.PI, 4.5 * Math.PI, Dtype.Float64).toArray64()
        let noise = gen.normal([| n; 2 |], 0.0, 0.5, Dtype.Float64).toArray64()
        rows n dtype (Array.init n (fun i -> (t[i] * cos t[i] + noise[2 * i]) / 5.0)) (Array.init n (fun i -> (t[i] * sin t[i] + noise[2 * i + 1]) / 5.0))

    /// The named data sets, for examples and the CLI.
    let named : (string * (Generator -> int -> Dtype -> Tensor)) list =
        [ "two-moons", twoMoons
          "hexagon", hexagon
          "8gaussians", eightGaussians
          "circles", circles
          "checkerboard", checkerboard
          "pinwheel", pinwheel
          "2spirals", twoSpirals
          "swissroll", swissRoll ]
