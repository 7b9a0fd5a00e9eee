/// The GEMM providers against MathNet.Numerics' matrix product and against each other, on random
/// sizes (empty ones included), all four transpose combinations and strides wider than the rows.
module Flows.Properties.Tensors.GemmTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open Flows.Tensors.Backend.Cpu

/// One product: C (M x N) = op(A) (M x K) x op(B) (K x N), each stored with Pad extra elements per row.
type Case =
    { M: int
      N: int
      K: int
      TransA: bool
      TransB: bool
      PadA: int
      PadB: int
      PadC: int
      Seed: int }

// Empty dimensions get a tenth of the draws so that each run meets them.
let private dimension maxDim =
    Gen.frequency [ 1, Gen.constant 0; 9, Gen.choose (1, maxDim) ]

let private cases maxDim =
    gen {
        let! m = dimension maxDim
        let! n = dimension maxDim
        let! k = dimension maxDim
        let! transA = Gen.elements [ false; true ]
        let! transB = Gen.elements [ false; true ]
        let! padA = Gen.choose (0, 3)
        let! padB = Gen.choose (0, 3)
        let! padC = Gen.choose (0, 3)
        let! seed = Gen.choose (0, Int32.MaxValue)
        return
            { M = m; N = n; K = k; TransA = transA; TransB = transB
              PadA = padA; PadB = padB; PadC = padC; Seed = seed }
    }
    |> Arb.fromGen

/// Stored operands and output of a case; padding and output hold NaN so that reading padding, or
/// reading C before writing it, shows up in the result.
type private Operands =
    { A: float[]; Lda: int; B: float[]; Ldb: int; C: float[]; Ldc: int }

// Minimal span length of a rows x cols matrix with row stride ld.
let private storage rows cols ld = if rows = 0 || cols = 0 then 0 else (rows - 1) * ld + cols

let private operands case =
    let random = Random(case.Seed)
    let fill rows cols ld =
        Array.init (storage rows cols ld) (fun index -> if index % ld < cols then random.NextDouble() * 2.0 - 1.0 else nan)
    let aRows, aCols = if case.TransA then case.K, case.M else case.M, case.K
    let bRows, bCols = if case.TransB then case.N, case.K else case.K, case.N
    let lda, ldb, ldc = aCols + case.PadA, bCols + case.PadB, case.N + case.PadC
    { A = fill aRows aCols lda; Lda = lda; B = fill bRows bCols ldb; Ldb = ldb
      C = Array.create (storage case.M case.N ldc) nan; Ldc = ldc }

// op(A) and op(B) as MathNet matrices, read back from the stored layout.
let private mathNetOperands case (o: Operands) =
    let opA =
        Matrix<float>.Build.Dense(case.M, case.K, fun i p -> if case.TransA then o.A[p * o.Lda + i] else o.A[i * o.Lda + p])
    let opB =
        Matrix<float>.Build.Dense(case.K, case.N, fun p j -> if case.TransB then o.B[j * o.Ldb + p] else o.B[p * o.Ldb + j])
    opA, opB

/// One precision under test: the tolerance, in units of |op(A)| |op(B)| (the scale of a dot product's
/// rounding error), the rounding of the operands it implies, and the provider call.
type private Precision =
    { Tolerance: float
      Round: Operands -> Operands
      Run: IGemmProvider -> Case -> Operands -> float[] }

let private inFloat64 =
    { Tolerance = 1e-10
      Round = id
      Run =
        fun provider case o ->
            let c = Array.copy o.C
            provider.Dgemm(
                case.TransA, case.TransB, case.M, case.N, case.K, ReadOnlySpan o.A, o.Lda, ReadOnlySpan o.B, o.Ldb, Span c, o.Ldc)
            c }

// The float32 run and its reference both see the data rounded to float32, so only the product's own
// rounding is measured.
let private inFloat32 =
    { Tolerance = 1e-4
      Round = fun o -> { o with A = Array.map (float32 >> float) o.A; B = Array.map (float32 >> float) o.B }
      Run =
        fun provider case o ->
            let c = Array.map float32 o.C
            provider.Sgemm(
                case.TransA, case.TransB, case.M, case.N, case.K,
                ReadOnlySpan(Array.map float32 o.A), o.Lda, ReadOnlySpan(Array.map float32 o.B), o.Ldb, Span c, o.Ldc)
            Array.map float c }

/// Asserts that `actual` (stored with row stride ldc) is `expected` within tolerance x (|op(A)| |op(B)|),
/// the scale of the rounding error of a dot product, and that C's row padding was not written.
let private assertClose tolerance case (o: Operands) (expected: Matrix<float>) (actual: float[]) =
    let opA, opB = mathNetOperands case o
    let scale = opA.PointwiseAbs() * opB.PointwiseAbs()
    for i in 0 .. case.M - 1 do
        for j in 0 .. o.Ldc - 1 do
            let index = i * o.Ldc + j
            if j >= case.N then
                if index < actual.Length && not (Double.IsNaN actual[index]) then
                    failwith $"C[{i},{j}] is row padding and was overwritten with {actual[index]}"
            elif not (abs (actual[index] - expected[i, j]) <= tolerance * scale[i, j]) then
                failwith $"C[{i},{j}] = {actual[index]}, expected {expected[i, j]} (tolerance {tolerance * scale[i, j]})"

// A provider's output read back as a MathNet matrix, to serve as the reference for another provider.
let private stored case (o: Operands) (c: float[]) =
    Matrix<float>.Build.Dense(case.M, case.N, fun i j -> c[i * o.Ldc + j])

let private matchesMathNet precision provider case =
    let o = precision.Round(operands case)
    let opA, opB = mathNetOperands case o
    assertClose precision.Tolerance case o (opA * opB) (precision.Run provider case o)

let private agrees precision reference provider case =
    let o = precision.Round(operands case)
    assertClose precision.Tolerance case o (stored case o (precision.Run reference case o)) (precision.Run provider case o)

let private check maxTest law =
    Check.One(Config.QuickThrowOnFailure.WithMaxTest maxTest, Prop.forAll (cases 70) law)

[<Fact>]
let ``The managed float64 product matches MathNet for every size, transpose and stride`` () =
    check 150 (matchesMathNet inFloat64 Gemm.managed)

[<Fact>]
let ``The managed float32 product matches MathNet for every size, transpose and stride`` () =
    check 150 (matchesMathNet inFloat32 Gemm.managed)

// Every transpose combination of one m × n × k shape, against MathNet in both precisions.
let private everyTranspose provider (m, n, k) =
    for transA in [ false; true ] do
        for transB in [ false; true ] do
            let case = { M = m; N = n; K = k; TransA = transA; TransB = transB; PadA = 1; PadB = 2; PadC = 3; Seed = m + n + k }
            matchesMathNet inFloat64 provider case
            matchesMathNet inFloat32 provider case

[<Fact>]
let ``The managed product is right across its cache-block boundaries`` () =
    // Depth over one 256-deep block, rows over one 120-row block, columns over one 2048-column block.
    for shape in [ 130, 40, 300; 7, 2100, 3; 250, 17, 513 ] do
        everyTranspose Gemm.managed shape

// Products 1 to 4 wide on one side (SkinnyGemm's), the other sides long enough for its four-vector
// column blocks, single vectors and scalar tails, and shallow, deep and odd depths.
let private skinnyShapes =
    [ for narrow in 1 .. 4 do
        for wide, k in [ 1, 1; 5, 2; 67, 64; 200, 37; 300, 513 ] do
            narrow, wide, k
            wide, narrow, k ]

[<Fact>]
let ``The managed product of one to four rows or columns matches MathNet`` () =
    for shape in skinnyShapes do
        everyTranspose Gemm.managed shape

/// A fact that needs AVX-512: skipped, saying so, where the runtime gives no accelerated 512-bit vectors.
type Avx512FactAttribute() as this =
    inherit FactAttribute()
    do
        if Gemm.wide.IsNone then
            this.Skip <- "NOT CHECKED: this processor (or DOTNET_PreferredVectorBitWidth) gives no accelerated 512-bit vectors, so the managed-avx512 provider was not tested"

[<Avx512Fact>]
let ``The 512-bit managed product matches MathNet for every size, transpose and stride`` () =
    check 150 (matchesMathNet inFloat64 Gemm.wide.Value)
    check 150 (matchesMathNet inFloat32 Gemm.wide.Value)

[<Avx512Fact>]
let ``The 512-bit managed product is right across its cache-block boundaries and on skinny shapes`` () =
    // Depth over one 256-deep block, rows over one 144-row block and one 12-row tile, columns over one
    // 2048-column block and one 32-column panel.
    for shape in [ 150, 40, 300; 13, 2100, 3; 290, 33, 513; 12, 32, 256 ] @ skinnyShapes do
        everyTranspose Gemm.wide.Value shape

[<Avx512Fact>]
let ``The 512-bit managed product split over three threads matches MathNet`` () =
    let threaded = GemmThreading.parallelise (lazy { Threads = 3; MinProduct = 0L }) Gemm.wide.Value
    check 60 (matchesMathNet inFloat32 threaded)
    for shape in [ 320, 256, 256; 40, 600, 64 ] do
        everyTranspose threaded shape

[<Fact>]
let ``OpenBLAS matches MathNet when it loads, and otherwise the active provider is managed`` () =
    match Gemm.openBlas with
    | Some openBlas ->
        check 150 (matchesMathNet inFloat64 openBlas)
        check 150 (matchesMathNet inFloat32 openBlas)
    | None -> Assert.Contains(Gemm.active.Name, [ "managed"; "managed-avx512" ])

[<Fact>]
let ``OpenBLAS and the managed provider agree when OpenBLAS loads, and otherwise the active provider is managed`` () =
    match Gemm.openBlas with
    | Some openBlas ->
        check 100 (agrees inFloat64 openBlas Gemm.managed)
        check 100 (agrees inFloat32 openBlas Gemm.managed)
    | None -> Assert.Contains(Gemm.active.Name, [ "managed"; "managed-avx512" ])

// Two threads from the first multiply-add, whatever FLOWS_GEMM_THREADS and the core count say.
let private twoThreads = lazy { Threads = 2; MinProduct = 0L }

[<Fact>]
let ``The managed product split over three threads matches MathNet for every size, transpose and stride`` () =
    // Three threads cut uneven blocks; 320 × 256 × 256 and 40 × 600 × 64 split C's rows, then its columns.
    let threaded = GemmThreading.parallelise (lazy { Threads = 3; MinProduct = 0L }) Gemm.managed
    check 100 (matchesMathNet inFloat64 threaded)
    check 100 (matchesMathNet inFloat32 threaded)
    for m, n, k in [ 320, 256, 256; 40, 600, 64 ] do
        for transA, transB in [ false, false; true, false; false, true; true, true ] do
            let case = { M = m; N = n; K = k; TransA = transA; TransB = transB; PadA = 2; PadB = 1; PadC = 3; Seed = m + k }
            matchesMathNet inFloat64 threaded case
            matchesMathNet inFloat32 threaded case

[<Fact>]
let ``OpenBLAS on two threads matches MathNet when it loads, and otherwise the active provider is managed`` () =
    match Gemm.openBlas with
    | Some single ->
        let openBlas = GemmThreading.parallelise twoThreads single
        check 60 (matchesMathNet inFloat32 openBlas)
        check 60 (matchesMathNet inFloat64 openBlas)
        // 320 × 256 × 256 multiply-adds: big enough that each thread gets several blocks.
        for transA, transB in [ false, false; true, false; false, true ] do
            let case = { M = 320; N = 256; K = 256; TransA = transA; TransB = transB; PadA = 0; PadB = 1; PadC = 2; Seed = 5 }
            matchesMathNet inFloat32 openBlas case
            matchesMathNet inFloat64 openBlas case
    | None -> Assert.Contains(Gemm.active.Name, [ "managed"; "managed-avx512" ])

/// A fact that needs MKL: skipped, saying so and how to install it, where libmkl_rt.so does not load.
type MklFactAttribute() as this =
    inherit FactAttribute()
    do
        if Gemm.mkl.Value.IsNone then
            this.Skip <- "NOT CHECKED: MKL (libmkl_rt.so) did not load, so FLOWS_GEMM=mkl was not tested; install it with `apt-get install -y libmkl-rt` (Debian non-free)"

[<MklFact>]
let ``MKL agrees with the managed provider for every size, transpose and stride, on one thread and on two`` () =
    let single = Gemm.mkl.Value.Value
    for mkl in [ single; GemmThreading.parallelise twoThreads single ] do
        check 100 (agrees inFloat64 Gemm.managed mkl)
        check 100 (agrees inFloat32 Gemm.managed mkl)
        for transA, transB in [ false, false; true, false; false, true; true, true ] do
            let case = { M = 320; N = 256; K = 256; TransA = transA; TransB = transB; PadA = 1; PadB = 0; PadC = 2; Seed = 7 }
            agrees inFloat32 Gemm.managed mkl case
            matchesMathNet inFloat64 mkl case

[<Fact>]
let ``Every provider rejects a short span or a narrow stride, naming the argument`` () =
    let providers = Gemm.managed :: Option.toList Gemm.wide @ Option.toList Gemm.openBlas @ Option.toList Gemm.mkl.Value
    for provider in providers @ List.map (GemmThreading.parallelise twoThreads) providers do
        let a, b, c = Array.zeroCreate<float> 12, Array.zeroCreate<float> 12, Array.zeroCreate<float> 9
        let thrown (name: string) (call: unit -> unit) =
            Assert.Equal(name, Assert.ThrowsAny<ArgumentException>(call).ParamName)
        // A 3x4 by 4x3 product: lda = 3 is narrower than A's rows, 11 elements are short of B, 5 of C.
        thrown "lda" (fun () -> provider.Dgemm(false, false, 3, 3, 4, ReadOnlySpan a, 3, ReadOnlySpan b, 3, Span c, 3))
        thrown "b" (fun () -> provider.Dgemm(false, false, 3, 3, 4, ReadOnlySpan a, 4, ReadOnlySpan(b, 0, 11), 3, Span c, 3))
        thrown "c" (fun () -> provider.Dgemm(false, false, 3, 3, 4, ReadOnlySpan a, 4, ReadOnlySpan b, 3, Span(c, 0, 5), 3))
        thrown "k" (fun () -> provider.Dgemm(false, false, 3, 3, -1, ReadOnlySpan a, 4, ReadOnlySpan b, 3, Span c, 3))

[<Fact>]
let ``The default provider is the 512-bit kernel where it runs, then OpenBLAS where it loads, then managed`` () =
    let expected =
        match Environment.GetEnvironmentVariable "FLOWS_GEMM" with
        | null
        | "" ->
            match Gemm.wide, Gemm.openBlas with
            | Some _, _ -> "managed-avx512"
            | None, Some _ -> "openblas"
            | None, None -> "managed"
        | "avx512" -> "managed-avx512"
        | pinned -> pinned
    Assert.Equal(expected, Gemm.active.Name)
