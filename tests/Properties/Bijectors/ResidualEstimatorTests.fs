/// The residual block's stochastic log-det estimators against an independent exact value: the
/// autodiff Jacobian of g, and det(I + J_g) by MathNet's LU. The maps g have Jacobians of spectral
/// norm 0.5–0.9 (measured by MathNet's SVD) where log|det| is of order 1, the regime the
/// estimators are for; means of many estimates must fall within 4 standard errors.
module Flows.Properties.Bijectors.ResidualEstimatorTests

open System
open Xunit
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Distributions
open Flows.Bijectors.Residual
open Flows.Tensors

let private dim = 3

/// g(x) = tanh(x)·Aᵀ with A = U·diag(s, 0.6s, 0.3s)·Uᵀ, U a random rotation: J_g = A·diag(sech² x),
/// so the spectral norm is at most s and close to it for small x.
let private contraction (seed: int) (s: float) =
    let random = Matrix<float>.Build.Random(dim, dim, Normal(0.0, 1.0, Random seed))
    let u = random.QR().Q
    let a = u * Matrix<float>.Build.DiagonalOfDiagonalArray [| s; 0.6 * s; 0.3 * s |] * u.Transpose()
    let at = Tensor.ofArray(a.Transpose().ToRowMajorArray(), [| dim; dim |])
    fun (x: Tensor) -> x.tanh().matmul at

/// The g of a residual block itself, one spectrally normalised layer at c = 0.85 (with a hidden
/// layer the local slope of a random block stays below 0.5), perturbed so the normalisation binds.
let private blockG (seed: int) =
    let o = { defaults with Hidden = []; Coefficient = 0.85 }
    let gen = Generator(uint64 seed)
    let b = createWith o gen Dtype.Float64 dim |> Flows.Entry.perturb gen 1.0
    network o (Flows.Bijector.withBuffers b.Params b) false

/// The autodiff Jacobian of g at each row, as MathNet matrices.
let private jacobians (g: Tensor -> Tensor) (x: Tensor) =
    Reference.jacobianRows g x |> Array.map (fun values -> Matrix<float>.Build.Dense(dim, dim, fun i j -> values[i * dim + j]))

let private exactLogDet (j: Matrix<float>) = log (abs ((Matrix<float>.Build.DenseIdentity dim + j).Determinant()))

/// Σ_{k=1}^{n} (−1)^{k+1} tr(Jᵏ)/k by MathNet matrix powers: the power series' expectation.
let private truncatedSeries (n: int) (j: Matrix<float>) =
    let mutable power = Matrix<float>.Build.DenseIdentity dim
    let mutable total = 0.0
    for k in 1..n do
        power <- power * j
        total <- total + (if k % 2 = 1 then 1.0 else -1.0) * power.Trace() / float k
    total

let private meanAndStandardError (values: float[]) =
    let mean = Array.average values
    let sd = sqrt ((values |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (values.Length - 1))
    mean, sd / sqrt (float values.Length)

/// The points and their exact log-dets, after checking the regime: ‖J_g‖₂ in [0.5, 0.9] and
/// |log det| between 0.3 and 3.
let private cases =
    [ for seed, s in [ 1, 0.55; 2, 0.7; 3, 0.9; 4, 0.0 ] ->
          let g = if s > 0.0 then contraction seed s else blockG seed
          let x =
              if s > 0.0 then (Generator(uint64 (40 + seed))).normal([| 2; dim |], 0.0, 0.2, Dtype.Float64)
              else
                  // the block's local slope varies with x: keep two candidates where it is steep
                  let candidates = (Generator(uint64 (40 + seed))).normal([| 200; dim |], 0.0, 1.5, Dtype.Float64)
                  let steep = jacobians g candidates |> Array.map (fun j -> j.L2Norm()) |> Array.indexed |> Array.filter (fun (_, n) -> n >= 0.5 && n <= 0.9)
                  Assert.True(steep.Length >= 2, $"seed {seed}: only {steep.Length} of 200 points with a spectral norm in [0.5, 0.9]")
                  Tensor.cat([| for i, _ in steep[0..1] -> candidates.narrow(0, i, 1) |], 0)
          let js = jacobians g x
          for j in js do
              let norm = j.L2Norm()
              Assert.True(norm >= 0.5 && norm <= 0.9, $"seed {seed}: spectral norm {norm} outside [0.5, 0.9]")
              let logDet = exactLogDet j
              Assert.True(abs logDet >= 0.3 && abs logDet <= 3.0, $"seed {seed}: log-det {logDet} not of order 1")
          seed, g, x, js ]

/// `calls` independent estimates per row; each call averages `probes` Hutchinson vectors.
let private estimates (calls: int) (probes: int) (estimator: Tensor -> Tensor) (x: Tensor) =
    let rows = x.shape[0]
    let xs = Tensor.cat(Array.create probes x, 0)
    let draws = Array.init calls (fun _ -> (estimator xs).reshape([| probes; rows |]).mean(0).toArray64())
    Array.init rows (fun row -> draws |> Array.map (fun d -> d[row]))

[<Fact>]
let ``the Russian-roulette mean matches the exact log-det within four standard errors`` () =
    for seed, g, x, js in cases do
        // stop below 1 − ‖J‖² keeps the estimator's variance finite, so the standard error means
        // something; one exact term leaves most of the log-det to the reweighted tail
        let gen = Generator(uint64 (600 + seed))
        let samples = estimates 4000 32 (rouletteLogDet gen 1 0.1 g g) x
        js |> Array.iteri (fun row j ->
            let truth = exactLogDet j
            let mean, se = meanAndStandardError samples[row]
            Assert.True(se < 0.02, $"seed {seed}, row {row}: standard error {se} too large to test anything")
            Assert.True(abs (mean - truth) <= 4.0 * se, $"seed {seed}, row {row}: roulette mean {mean} ± {se} vs exact {truth}"))

[<Fact>]
let ``the power-series mean matches its truncated series, which is within the bound of the exact log-det`` () =
    let terms = 12
    for seed, g, x, js in cases do
        let gen = Generator(uint64 (700 + seed))
        let samples = estimates 400 8 (powerSeriesLogDet gen terms g) x
        js |> Array.iteri (fun row j ->
            let expected = truncatedSeries terms j
            let mean, se = meanAndStandardError samples[row]
            Assert.True(se < 0.05, $"seed {seed}, row {row}: standard error {se} too large to test anything")
            Assert.True(abs (mean - expected) <= 4.0 * se, $"seed {seed}, row {row}: power-series mean {mean} ± {se} vs truncated series {expected}")
            let c = j.L2Norm()
            let bound = float dim * c ** float (terms + 1) / (float (terms + 1) * (1.0 - c))
            let truth = exactLogDet j
            Assert.True(abs (expected - truth) <= bound, $"seed {seed}, row {row}: truncated series {expected} vs exact {truth}, bound {bound}"))
