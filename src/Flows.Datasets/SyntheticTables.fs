namespace Flows.Datasets

open System
open Flows
open Flows.Tensors

/// A synthetic table shaped like what users bring, with an exact log-density. The parameters are
/// fixed by the table's seed; the generator handed to `Sample` decides only the draws.
type SyntheticTable =
    { /// snake_case name, used in bench figure names.
      Name: string
      /// Training rows a bench draws.
      Rows: int
      /// Columns of every row.
      Columns: int
      /// `n` independent rows as a float64 [n; Columns] tensor.
      Sample: Generator -> int -> Tensor
      /// The exact log-density (nats) of every row of a [n; Columns] tensor.
      LogDensity: Tensor -> float[] }

/// Seeded synthetic tables with exact densities (issue 13's `tables` bench): correlated and skewed,
/// heavy-tailed mixtures, dequantised counts, and strongly non-Gaussian low-dimensional rows.
[<RequireQualifiedAccess>]
module SyntheticTables =

    let private normals (gen: Generator) (count: int) = gen.normal([| count |], dtype = Dtype.Float64).toArray64()

    let private uniforms (gen: Generator) (count: int) (low: float) (high: float) =
        gen.uniform([| count |], low, high, Dtype.Float64).toArray64()

    let private logSqrtTwoPi = 0.5 * log (2.0 * Math.PI)

    let private logNormal (x: float) (mean: float) (std: float) =
        let u = (x - mean) / std
        -0.5 * u * u - logSqrtTwoPi - log std

    // log cosh t without overflow for large |t|
    let private logCosh (t: float) =
        let a = abs t
        a + log (1.0 + exp (-2.0 * a)) - log 2.0

    let private logSumExp (xs: float[]) =
        let m = Array.max xs
        if Double.IsNegativeInfinity m then m else m + log (Array.sumBy (fun x -> exp (x - m)) xs)

    /// log Γ(m/2) for an integer m ≥ 1, exact up to rounding: Γ(1) = 1, Γ(½) = √π, Γ(s + 1) = s·Γ(s).
    let internal logGammaHalf (m: int) =
        Guard.positive (nameof m) m
        let mutable s = if m % 2 = 0 then 1.0 else 0.5
        let mutable acc = if m % 2 = 0 then 0.0 else 0.5 * log Math.PI
        while s < 0.5 * float m - 0.25 do
            acc <- acc + log s
            s <- s + 1.0
        acc

    // A d×d lower-triangular matrix (row-major, flat) with diagonal exp(U(−r, r)) and off-diagonal
    // entries N(0, offStd²): invertible, log|det| = Σ log Lᵢᵢ.
    let private randomLower (gen: Generator) (d: int) (r: float) (offStd: float) =
        let diag = uniforms gen d -r r
        let off = normals gen (d * d)
        Array.init (d * d) (fun k ->
            let i, j = k / d, k % d
            if i = j then exp diag[i] elif j < i then offStd * off[k] else 0.0)

    let private logDiagonal (l: float[]) (d: int) = Seq.sum (seq { for i in 0 .. d - 1 -> log l[i * d + i] })

    // out = L·v (v and out length d)
    let private lowerTimes (l: float[]) (d: int) (v: float[]) (out: float[]) =
        for i in 0 .. d - 1 do
            let mutable s = 0.0
            for j in 0 .. i do
                s <- s + l[i * d + j] * v[j]
            out[i] <- s

    // out = L⁻¹·v by forward substitution
    let private lowerSolve (l: float[]) (d: int) (v: float[]) (out: float[]) =
        for i in 0 .. d - 1 do
            let mutable s = v[i]
            for j in 0 .. i - 1 do
                s <- s - l[i * d + j] * out[j]
            out[i] <- s / l[i * d + i]

    let private toRows (n: int) (d: int) (values: float[]) = Tensor.ofArray(values, [| n; d |])

    let private ofRows (name: string) (d: int) (x: Tensor) =
        Guard.rows name d x
        x.cast(Dtype.Float64).toArray64()

    // Component indices drawn with probabilities `weights` (which sum to 1).
    let private categorical (gen: Generator) (weights: float[]) (n: int) =
        let u = uniforms gen n 0.0 1.0
        let cumulative = Array.scan (+) 0.0 weights
        u |> Array.map (fun v -> max 0 (min (weights.Length - 1) ((cumulative |> Array.findIndexBack (fun c -> c <= v)))))

    let private randomWeights (gen: Generator) (k: int) =
        let raw = uniforms gen k -0.5 0.5 |> Array.map exp
        let total = Array.sum raw
        raw |> Array.map (fun w -> w / total)

    /// Correlated and skewed rows: x = A·g(z) + b with z ~ N(0, I), g the sinh-arcsinh bijection of
    /// Jones & Pewsey (2009) per column, g(z) = sinh((asinh z + εⱼ)/δⱼ) (εⱼ ~ U(−1, 1) skews, δⱼ ~
    /// U(0.5, 1.5) sets the tails), A lower triangular (diagonal exp U(−0.7, 0.7), below it N(0, 0.5²)),
    /// b ~ N(0, 2²). By change of variables, with y = A⁻¹(x − b):
    /// log p(x) = Σⱼ [log φ(g⁻¹(yⱼ)) + log δⱼ + log cosh(δⱼ asinh yⱼ − εⱼ) − ½ log(1 + yⱼ²)] − Σⱼ log Aⱼⱼ.
    let correlatedSkewedOf (rows: int) (columns: int) (seed: uint64) : SyntheticTable =
        Guard.positive (nameof columns) columns
        let d = columns
        let gen = Generator seed
        let epsilon = uniforms gen d -1.0 1.0
        let delta = uniforms gen d 0.5 1.5
        let a = randomLower gen d 0.7 0.5
        let b = normals gen d |> Array.map ((*) 2.0)
        let logDetA = logDiagonal a d
        let sample (g: Generator) (n: int) =
            let z = normals g (n * d)
            let out = Array.zeroCreate (n * d)
            let y = Array.zeroCreate d
            let x = Array.zeroCreate d
            for i in 0 .. n - 1 do
                for j in 0 .. d - 1 do
                    y[j] <- sinh ((Math.Asinh z[i * d + j] + epsilon[j]) / delta[j])
                lowerTimes a d y x
                for j in 0 .. d - 1 do
                    out[i * d + j] <- x[j] + b[j]
            toRows n d out
        let logDensity (rows: Tensor) =
            let v = ofRows (nameof rows) d rows
            let n = v.Length / d
            Array.init n (fun i ->
                let centred = Array.init d (fun j -> v[i * d + j] - b[j])
                let y = Array.zeroCreate d
                lowerSolve a d centred y
                let mutable s = -logDetA
                for j in 0 .. d - 1 do
                    let t = delta[j] * Math.Asinh y[j] - epsilon[j]
                    let z = sinh t
                    s <- s - 0.5 * z * z - logSqrtTwoPi + log delta[j] + logCosh t - 0.5 * log (1.0 + y[j] * y[j])
                s)
        { Name = "correlated_skewed"; Rows = rows; Columns = d; Sample = sample; LogDensity = logDensity }

    /// A mixture of `components` multivariate Student-t laws: weights ∝ exp U(−½, ½), degrees of
    /// freedom νₖ = 3, 4, 5, 3, … (integers, so that χ²_ν is a sum of ν squared normals), locations
    /// N(0, I), scale factors Lₖ lower triangular (diagonal exp U(−½, ½), below it N(0, 1/d)).
    /// log p(x) = logsumexpₖ [log wₖ + log Γ((νₖ+d)/2) − log Γ(νₖ/2) − (d/2) log(νₖπ) − log|Lₖ|
    /// − ((νₖ+d)/2) log(1 + |Lₖ⁻¹(x − μₖ)|²/νₖ)].
    let heavyTailedMixtureOf (rows: int) (columns: int) (components: int) (seed: uint64) : SyntheticTable =
        Guard.positive (nameof columns) columns
        Guard.positive (nameof components) components
        let d, k = columns, components
        let gen = Generator seed
        let weights = randomWeights gen k
        let nu = Array.init k (fun c -> 3 + c % 3)
        let mu = Array.init k (fun _ -> normals gen d)
        let scale = Array.init k (fun _ -> randomLower gen d 0.5 (1.0 / sqrt (float d)))
        let logConstant =
            Array.init k (fun c ->
                log weights[c] + logGammaHalf (nu[c] + d) - logGammaHalf nu[c]
                - 0.5 * float d * log (float nu[c] * Math.PI) - logDiagonal scale[c] d)
        let maxNu = Array.max nu
        let sample (g: Generator) (n: int) =
            let which = categorical g weights n
            let z = normals g (n * (d + maxNu))
            let out = Array.zeroCreate (n * d)
            let x = Array.zeroCreate d
            for i in 0 .. n - 1 do
                let c = which[i]
                let row = i * (d + maxNu)
                let mutable chi2 = 0.0
                for r in 0 .. nu[c] - 1 do
                    chi2 <- chi2 + z[row + d + r] * z[row + d + r]
                lowerTimes scale[c] d z[row .. row + d - 1] x
                let w = sqrt (float nu[c] / chi2)
                for j in 0 .. d - 1 do
                    out[i * d + j] <- mu[c][j] + w * x[j]
            toRows n d out
        let logDensity (rows: Tensor) =
            let v = ofRows (nameof rows) d rows
            let n = v.Length / d
            Array.init n (fun i ->
                let y = Array.zeroCreate d
                Array.init k (fun c ->
                    lowerSolve scale[c] d (Array.init d (fun j -> v[i * d + j] - mu[c][j])) y
                    let m = Array.sumBy (fun u -> u * u) y
                    logConstant[c] - 0.5 * float (nu[c] + d) * log (1.0 + m / float nu[c]))
                |> logSumExp)
        { Name = "heavy_tailed_mixture"; Rows = rows; Columns = d; Sample = sample; LogDensity = logDensity }

    /// log k! from a table up to 1024, Stirling's series beyond.
    let private logFactorial =
        let table = Array.scan (fun acc k -> acc + log (float k)) 0.0 [| 1 .. 1024 |]
        fun (k: int) ->
            if k < table.Length then table[k]
            else
                let x = float k + 1.0
                (x - 0.5) * log x - x + 0.5 * log (2.0 * Math.PI) + 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x * x)

    /// Dequantised counts: n ~ Σₖ wₖ Πⱼ Poisson(λₖⱼ), x = n + u with u ~ U[0, 1)ᵈ. Within a component the
    /// log-rates share two factors, log λₖⱼ = βⱼ + Σᵣ aₖᵣ vᵣⱼ (βⱼ ~ U(log ½, log 8), aₖᵣ ~ N(0, 1),
    /// vᵣⱼ ~ N(0, 0.6²)), clamped to [log 0.2, log 30]. The uniform has density 1 on the cell, so
    /// log p(x) = log P(⌊x⌋) = logsumexpₖ [log wₖ + Σⱼ (nⱼ log λₖⱼ − λₖⱼ − log nⱼ!)] (−∞ below 0).
    let dequantisedCountsOf (rows: int) (columns: int) (components: int) (seed: uint64) : SyntheticTable =
        Guard.positive (nameof columns) columns
        Guard.positive (nameof components) components
        let d, k = columns, components
        let factors = 2
        let gen = Generator seed
        let weights = randomWeights gen k
        let beta = uniforms gen d (log 0.5) (log 8.0)
        let loadings = normals gen (k * factors)
        let v = normals gen (factors * d) |> Array.map ((*) 0.6)
        let logRate =
            Array.init k (fun c ->
                Array.init d (fun j ->
                    let mutable s = beta[j]
                    for r in 0 .. factors - 1 do
                        s <- s + loadings[c * factors + r] * v[r * d + j]
                    Math.Clamp(s, log 0.2, log 30.0)))
        let rate = logRate |> Array.map (Array.map exp)
        // inversion: the smallest count whose cumulative probability reaches u (λ ≤ 30, so e^−λ is normal)
        let poisson (lambda: float) (u: float) =
            let mutable count = 0
            let mutable p = exp -lambda
            let mutable cumulative = p
            while u > cumulative && count < 1000 do
                count <- count + 1
                p <- p * lambda / float count
                cumulative <- cumulative + p
            count
        let sample (g: Generator) (n: int) =
            let which = categorical g weights n
            let u = uniforms g (n * d) 0.0 1.0
            let jitter = uniforms g (n * d) 0.0 1.0
            let out = Array.init (n * d) (fun e -> float (poisson rate.[which.[e / d]].[e % d] u.[e]) + jitter[e])
            toRows n d out
        let logDensity (rows: Tensor) =
            let x = ofRows (nameof rows) d rows
            let n = x.Length / d
            Array.init n (fun i ->
                let counts = Array.init d (fun j -> floor x[i * d + j])
                if counts |> Array.exists (fun c -> c < 0.0) then Double.NegativeInfinity
                else
                    let logFact = counts |> Array.sumBy (int >> logFactorial)
                    Array.init k (fun c ->
                        let mutable s = log weights[c] - logFact
                        for j in 0 .. d - 1 do
                            s <- s + counts[j] * logRate[c][j] - rate[c][j]
                        s)
                    |> logSumExp)
        { Name = "dequantised_counts"; Rows = rows; Columns = d; Sample = sample; LogDensity = logDensity }

    /// Strongly non-Gaussian rows: columns/2 independent 2-D blocks, each an equal-ish mixture of two
    /// banana-shaped (twisted) Gaussians facing each other like two moons. Component c draws
    /// u ~ N(μ_c, diag(σ_c²)) and bends v = (u₁, u₂ + b_c((u₁ − μ_c1)² − σ_c1²)) (unit Jacobian); the block
    /// is then rotated by θ ~ U(0, 2π), scaled by s ~ exp U(−1, 1) and shifted by N(0, 2²):
    /// log p(x) = Σ_blocks [logsumexp_c (log w_c + log N(v₁; μ_c1, σ_c1) + log N(v₂ − b_c((v₁ − μ_c1)² − σ_c1²); μ_c2, σ_c2)) − 2 log s],
    /// v = Rᵀ(x − shift)/s. Mode positions μ_c1 = ∓U(0.6, 1.2), μ_c2 = ±U(0.2, 0.6), bends b_c = ±U(0.5, 1),
    /// σ_c1 ~ U(0.6, 1), σ_c2 ~ U(0.15, 0.35), w₁ ~ U(0.35, 0.65).
    let bananaBlocksOf (name: string) (rows: int) (columns: int) (seed: uint64) : SyntheticTable =
        Guard.that (nameof columns) (columns >= 2 && columns % 2 = 0) $"must be a positive even number, got {columns}"
        let d, blocks = columns, columns / 2
        let gen = Generator seed
        // per block and component: weight, μ1, μ2, σ1, σ2, bend
        let drawBlock () =
            let r = uniforms gen 12 0.0 1.0
            let w1 = 0.35 + 0.3 * r[0]
            let side = [| -1.0; 1.0 |]
            Array.init 2 (fun c ->
                let o = 1 + 5 * c
                {| LogWeight = log (if c = 0 then w1 else 1.0 - w1)
                   Mu1 = side[c] * (0.6 + 0.6 * r[o])
                   Mu2 = -side[c] * (0.2 + 0.4 * r[o + 1])
                   Sigma1 = 0.6 + 0.4 * r[o + 2]
                   Sigma2 = 0.15 + 0.2 * r[o + 3]
                   Bend = -side[c] * (0.5 + 0.5 * r[o + 4]) |})
        let parts = Array.init blocks (fun _ -> drawBlock ())
        let theta = uniforms gen blocks 0.0 (2.0 * Math.PI)
        let logScale = uniforms gen blocks -1.0 1.0
        let shift = normals gen d |> Array.map ((*) 2.0)
        let sample (g: Generator) (n: int) =
            let z = normals g (n * d)
            let which = Array.init blocks (fun b -> categorical g [| exp parts.[b].[0].LogWeight; exp parts.[b].[1].LogWeight |] n)
            let out = Array.zeroCreate (n * d)
            for i in 0 .. n - 1 do
                for b in 0 .. blocks - 1 do
                    let p = parts[b][which[b][i]]
                    let u1 = p.Mu1 + p.Sigma1 * z[i * d + 2 * b]
                    let u2 = p.Mu2 + p.Sigma2 * z[i * d + 2 * b + 1]
                    let v1, v2 = u1, u2 + p.Bend * ((u1 - p.Mu1) ** 2.0 - p.Sigma1 * p.Sigma1)
                    let c, s, scale = cos theta[b], sin theta[b], exp logScale[b]
                    out[i * d + 2 * b] <- shift[2 * b] + scale * (c * v1 - s * v2)
                    out[i * d + 2 * b + 1] <- shift[2 * b + 1] + scale * (s * v1 + c * v2)
            toRows n d out
        let logDensity (rows: Tensor) =
            let x = ofRows (nameof rows) d rows
            let n = x.Length / d
            Array.init n (fun i ->
                let mutable total = 0.0
                for b in 0 .. blocks - 1 do
                    let c, s, scale = cos theta[b], sin theta[b], exp logScale[b]
                    let dx, dy = x[i * d + 2 * b] - shift[2 * b], x[i * d + 2 * b + 1] - shift[2 * b + 1]
                    let v1, v2 = (c * dx + s * dy) / scale, (-s * dx + c * dy) / scale
                    let terms =
                        parts[b]
                        |> Array.map (fun p ->
                            let u2 = v2 - p.Bend * ((v1 - p.Mu1) ** 2.0 - p.Sigma1 * p.Sigma1)
                            p.LogWeight + logNormal v1 p.Mu1 p.Sigma1 + logNormal u2 p.Mu2 p.Sigma2)
                    total <- total + logSumExp terms - 2.0 * logScale[b]
                total)
        { Name = name; Rows = rows; Columns = d; Sample = sample; LogDensity = logDensity }

    /// About 150 × 13, correlated and skewed (`correlatedSkewedOf`).
    let correlatedSkewed = correlatedSkewedOf 150 13 1301UL

    /// About 450 × 30, three heavy-tailed Student-t components (`heavyTailedMixtureOf`).
    let heavyTailedMixture = heavyTailedMixtureOf 450 30 3 3002UL

    /// About 1,400 × 64, four components of correlated Poisson counts, dequantised (`dequantisedCountsOf`).
    let dequantisedCounts = dequantisedCountsOf 1400 64 4 6403UL

    /// 5,000 × 8: four banana-pair blocks (`bananaBlocksOf`).
    let nonGaussianLow8 = bananaBlocksOf "non_gaussian_low8" 5000 8 804UL

    /// 100,000 × 6: three banana-pair blocks (`bananaBlocksOf`).
    let nonGaussianLow6 = bananaBlocksOf "non_gaussian_low6" 100000 6 605UL

    /// Every table the `tables` bench runs, smallest first.
    let all = [ correlatedSkewed; heavyTailedMixture; dequantisedCounts; nonGaussianLow8; nonGaussianLow6 ]
