/// The synthetic tables' exact densities, checked on 2- and 4-column instances of the same constructions:
/// each integrates to 1 (importance sampling from a broad Student-t proposal, or the exact sum over the
/// count lattice), and each sampler agrees with its density (E[log p] and bounded statistics on the
/// sampler's rows against importance-sampling or lattice estimates from the density alone).
module Flows.Properties.Data.SyntheticTableTests

open System
open Xunit
open MathNet.Numerics
open MathNet.Numerics.LinearAlgebra
open Flows.Data
open Flows.Datasets
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// Mean and standard error of the mean.
let private meanAndError (xs: float[]) =
    let m = Array.average xs
    let variance = xs |> Array.sumBy (fun x -> (x - m) * (x - m)) |> fun s -> s / float (xs.Length - 1)
    m, sqrt (variance / float xs.Length)

/// Fails unless two estimates agree within `k` combined standard errors.
let private agree (what: string) (k: float) (expected: float, expectedError: float) (actual: float, actualError: float) =
    let bound = k * sqrt (expectedError * expectedError + actualError * actualError)
    Close.scalar $"{what} ({k} combined standard errors = {bound})" { Abs = bound; Rel = 0.0 } expected actual

/// Rows of a [n; d] float64 tensor, one array each.
let private rowsOf (x: Tensor) =
    let d = x.shape[1]
    x.toArray64() |> Array.chunkBySize d

/// A multivariate Student-t with ν = 2 whose scale is twice the covariance of `pilot` rows: its
/// polynomial tails are heavier than every table's, so p/q stays bounded.
type private Proposal(pilot: float[][]) =
    let d = pilot[0].Length
    let nu = 2.0
    let mean = Array.init d (fun j -> pilot |> Array.averageBy (fun r -> r[j]))
    let covariance =
        Matrix<float>.Build.Dense(d, d, fun a b ->
            2.0 * (pilot |> Array.averageBy (fun r -> (r[a] - mean[a]) * (r[b] - mean[b]))))
    let cholesky = covariance.Cholesky()
    let logConstant =
        SpecialFunctions.GammaLn((nu + float d) / 2.0) - SpecialFunctions.GammaLn(nu / 2.0)
        - 0.5 * float d * log (nu * Math.PI) - 0.5 * cholesky.DeterminantLn

    member _.Sample (gen: Generator) (n: int) =
        let z = gen.normal([| n; d + 2 |], dtype = Dtype.Float64).toArray64()
        Array.init n (fun i ->
            let row = z[i * (d + 2) .. i * (d + 2) + d + 1]
            let chi2 = row[d] * row[d] + row[d + 1] * row[d + 1]
            let g = cholesky.Factor * Vector<float>.Build.DenseOfArray(row[0 .. d - 1])
            Array.init d (fun j -> mean[j] + g[j] * sqrt (nu / chi2)))

    member _.LogDensity (x: float[]) =
        let centred = Vector<float>.Build.DenseOfArray(Array.init d (fun j -> x[j] - mean[j]))
        let m = centred * cholesky.Solve centred
        logConstant - 0.5 * (nu + float d) * log (1.0 + m / nu)

/// Importance sampling against the table's density: the normaliser, E_p[log p] and bounded statistics from
/// proposal draws; the same expectations on the table's own samples.
let private checkContinuous (table: SyntheticTable) (seed: uint64) =
    let n = 200000
    let gen = Generator seed
    let proposal = Proposal(rowsOf (table.Sample (gen.split ()) 4000))
    let drawn = proposal.Sample (gen.split ()) n
    let logP = table.LogDensity(Tensor.ofArray(Array.concat drawn, [| n; table.Columns |]))
    let weights = Array.init n (fun i -> exp (logP[i] - proposal.LogDensity drawn[i]))
    let normaliser, normaliserError = meanAndError weights
    Assert.True(normaliserError < 0.01, $"{table.Name}: the importance-sampling error {normaliserError} is too broad to test anything")
    agree $"{table.Name}: ∫p" 4.5 (1.0, 0.0) (normaliser, normaliserError)
    let own = table.Sample (gen.split ()) n
    let ownLogP = table.LogDensity own
    agree $"{table.Name}: E[log p] on the sampler's rows against importance sampling" 4.5
        (meanAndError (Array.init n (fun i -> weights[i] * logP[i]))) (meanAndError ownLogP)
    // bounded statistics, so that both estimators have finite variance even under heavy tails: every
    // column's CDF at the pilot's deciles 1, 3, 5, 7, 9, and every pair's lower quadrant at the medians
    let ownRows = rowsOf own
    let pilot = rowsOf (table.Sample (gen.split ()) 4000)
    let quantile j (q: float) = (pilot |> Array.map (fun r -> r[j]) |> Array.sort)[int (q * 4000.0)]
    let indicator b = if b then 1.0 else 0.0
    let statistics =
        [ for j in 0 .. table.Columns - 1 do
            for q in [ 0.1; 0.3; 0.5; 0.7; 0.9 ] do
                let t = quantile j q
                $"P(x{j} < {t:F3})", fun (r: float[]) -> indicator (r[j] < t)
          for j in 0 .. table.Columns - 1 do
            for k in j + 1 .. table.Columns - 1 do
                let tj, tk = quantile j 0.5, quantile k 0.5
                $"P(x{j} < {tj:F3}, x{k} < {tk:F3})", fun (r: float[]) -> indicator (r[j] < tj && r[k] < tk) ]
    for what, f in statistics do
        agree $"{table.Name}: {what} on the sampler's rows against importance sampling" 4.5
            (meanAndError (Array.init n (fun i -> weights[i] * f drawn[i]))) (meanAndError (ownRows |> Array.map f))

[<Fact>]
let ``Correlated skewed: two columns integrate to 1 and the sampler agrees with the density`` () =
    checkContinuous (SyntheticTables.correlatedSkewedOf 100 2 21UL) 1UL

[<Fact>]
let ``Heavy-tailed mixture: two columns of three t components integrate to 1 and the sampler agrees`` () =
    checkContinuous (SyntheticTables.heavyTailedMixtureOf 100 2 3 22UL) 2UL

[<Fact>]
let ``Banana blocks: one and two blocks integrate to 1 and the sampler agrees with the density`` () =
    checkContinuous (SyntheticTables.bananaBlocksOf "one_block" 100 2 23UL) 3UL
    checkContinuous (SyntheticTables.bananaBlocksOf "two_blocks" 100 4 25UL) 6UL

[<Fact>]
let ``Dequantised counts: the lattice sums to 1, the density is flat on a cell, and the sampler agrees`` () =
    let table = SyntheticTables.dequantisedCountsOf 100 2 4 24UL
    let top = 150
    let cells = [| for a in 0 .. top do for b in 0 .. top -> [| float a; float b |] |]
    let at (offset: float) = table.LogDensity(Tensor.ofArray(cells |> Array.collect (Array.map ((+) offset)), [| cells.Length; 2 |]))
    let logP = at 0.5
    let p = logP |> Array.map exp
    Close.scalar "Σ P(n) over 0..150²" { Abs = 1e-9; Rel = 0.0 } 1.0 (Array.sum p)
    Assert.Equal<float[]>(at 0.0, at 0.999)
    let outside = table.LogDensity(Tensor.ofArray([| -0.5; 1.5 |], [| 1; 2 |]))
    Assert.True(Double.IsNegativeInfinity outside[0], "a negative count has density 0")
    let n = 200000
    let own = table.Sample (Generator 4UL) n
    let negativeEntropy = Array.fold2 (fun s q lq -> if q > 0.0 then s + q * lq else s) 0.0 p logP
    agree "E[log p] on the sampler's rows against −H by the lattice sum" 4.5 (negativeEntropy, 0.0) (meanAndError (table.LogDensity own))
    let ownRows = rowsOf own
    for j in 0 .. 1 do
        let exact = Array.fold2 (fun s q (cell: float[]) -> s + q * (cell[j] + 0.5)) 0.0 p cells
        agree $"E[x{j}] on the sampler's rows against the lattice sum" 4.5 (exact, 0.0) (meanAndError (ownRows |> Array.map (fun r -> r[j])))

[<Fact>]
let ``The bench tables have their stated shapes, rows fixed by the seed, and finite densities`` () =
    for table in SyntheticTables.all do
        let rows = table.Sample (Generator 5UL) 200
        Assert.Equal<int[]>([| 200; table.Columns |], rows.shape)
        Assert.Equal<float[]>(rows.toArray64(), (table.Sample (Generator 5UL) 200).toArray64())
        Assert.NotEqual<float[]>(rows.toArray64(), (table.Sample (Generator 6UL) 200).toArray64())
        Assert.All(table.LogDensity rows, fun l -> Assert.True(Double.IsFinite l, $"{table.Name}: log p = {l}"))
    let shapes = SyntheticTables.all |> List.map (fun t -> t.Name, t.Rows, t.Columns)
    Assert.Equal<(string * int * int) list>(
        [ "correlated_skewed", 150, 13; "heavy_tailed_mixture", 450, 30; "dequantised_counts", 1400, 64
          "non_gaussian_low8", 5000, 8; "non_gaussian_low6", 100000, 6 ], shapes)
