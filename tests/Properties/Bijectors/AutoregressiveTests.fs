/// Family laws of the autoregressive and coupling bijectors: MADE's masks give the autoregressive
/// property, Jacobians are triangular in the order each bijector declares in its settings, the MAF
/// log-scale stays bounded, the IAF is the MAF run backwards, and conditional flows depend on
/// their context (and only on it).
module Flows.Properties.Bijectors.AutoregressiveTests

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

let private namesWhere (keep: Flows.Fixtures.Fixture -> Bijector -> bool) : seq<obj[]> =
    Fixtures.all
    |> Seq.filter (fun e -> keep e (e.Create (Generator 1UL) Dtype.Float64 (List.head e.Dims)))
    |> Seq.map (fun e -> [| box e.Name |])

/// Entries that declare an autoregressive order (MADE degrees) in their settings.
let autoregressiveNames = namesWhere (fun _ b -> b.Settings.ContainsKey "order")
/// Entries that declare a coupling mask in their settings.
let couplingNames = namesWhere (fun _ b -> b.Settings.ContainsKey "mask")
/// Entries that take a context.
let conditionalNames = namesWhere (fun e _ -> e.ContextDim.IsSome)

/// A random MADE spec: dimension 1–6, 0–3 hidden layers (or 1–2 residual blocks), 1–3 outputs per
/// dimension, any order, with or without a context of 2.
let private madeSpec (g: Generator) =
    let draw (low: int) (high: int) = (g.integers([| 1 |], low, high + 1)).toArrayInt()[0]
    let dim = draw 1 6
    let residual = draw 0 2
    let layers = if residual > 0 then 1 else draw 0 3
    { Dim = dim
      Hidden = List.init layers (fun _ -> draw 1 10)
      Multiplier = draw 1 3
      Order = (match draw 0 2 with 0 -> Order.Natural | 1 -> Order.Reversed | _ -> Order.Random(draw 0 1000))
      ContextDim = 2 * draw 0 1
      ResidualBlocks = residual
      Activation = Activation.Tanh }

[<Fact>]
let ``MADE degrees follow the order: natural, reversed, or a seeded permutation of 1..D`` () =
    Gens.check 50 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let dim = (g.integers([| 1 |], 1, 10)).toArrayInt()[0]
        let ascending = Array.init dim (fun i -> i + 1)
        Assert.Equal<int[]>(ascending, Made.inputDegrees dim Order.Natural)
        Assert.Equal<int[]>(Array.rev ascending, Made.inputDegrees dim Order.Reversed)
        let random = Made.inputDegrees dim (Order.Random seed)
        Assert.Equal<int[]>(ascending, Array.sort random)
        Assert.Equal<int[]>(random, Made.inputDegrees dim (Order.Random seed))
        Assert.Equal<int[]>(random, Made.inputDegrees dim (Order.Degrees random)))

[<Fact>]
let ``MADE outputs of dimension d depend only on inputs of smaller order, and on all of them when the layers are wide enough`` () =
    Gens.check 40 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let spec = madeSpec g
        let made, p0 = Made.create g Dtype.Float64 spec
        // move every weight (the zero-initialised last layer included) off its initial value
        let p = p0.Map(fun t -> t + Draw.normal g t.shape * 0.5)
        let batch = 3
        let x = Draw.normal g [| batch; spec.Dim |]
        let context = if spec.ContextDim > 0 then Some(Draw.normal g [| batch; spec.ContextDim |]) else None
        let k = spec.Multiplier
        let outputs = spec.Dim * k
        let jacobian = (Ad.batchJacobian (fun x -> Made.apply made p context x) x).toArray64()
        let degree = made.Degrees
        let wide = spec.Hidden |> List.forall (fun w -> w >= spec.Dim - 1)
        for o in 0 .. outputs - 1 do
            let d = o / k
            for i in 0 .. spec.Dim - 1 do
                let entries = Array.init batch (fun r -> jacobian[(r * outputs + o) * spec.Dim + i])
                if degree[i] >= degree[d] then
                    if entries |> Array.exists (fun v -> v <> 0.0) then
                        failwith $"output {o} (dimension {d}, degree {degree[d]}) depends on input {i} of degree {degree[i]}: {entries}"
                elif wide && entries |> Array.forall (fun v -> v = 0.0) then
                    failwith $"output {o} (degree {degree[d]}) ignores input {i} of smaller degree {degree[i]} although every hidden layer has all degrees"
        match context with
        | Some c ->
            let onContext = (Ad.batchJacobian (fun c -> Made.apply made p (Some c) x) c).toArray64()
            for o in 0 .. outputs - 1 do
                let row = Array.init (batch * spec.ContextDim) (fun j -> onContext[((j / spec.ContextDim) * outputs + o) * spec.ContextDim + j % spec.ContextDim])
                if row |> Array.forall (fun v -> v = 0.0) then failwith $"output {o} does not depend on the context"
        | None -> ())

[<Fact>]
let ``a MADE rebuilt from its settings has the same masks`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let made, p = Made.create g Dtype.Float64 (madeSpec g)
        let rebuilt, _ = Made.create (Generator 0UL) Dtype.Float64 (Made.ofSettings (Settings.ofList (Made.settings made)))
        Assert.Equal<int[]>(made.Degrees, rebuilt.Degrees)
        Array.iter2 (fun (m: Constant) (r: Constant) -> Close.tensors "mask" { Abs = 0.0; Rel = 0.0 } m.Value r.Value) made.Masks rebuilt.Masks
        let x = Draw.normal g [| 2; made.Spec.Dim |]
        let context = if made.Spec.ContextDim > 0 then Some(Draw.normal g [| 2; made.Spec.ContextDim |]) else None
        Close.tensors "outputs" Tolerance.float64 (Made.apply made p context x) (Made.apply rebuilt p context x))

/// Fails unless every row's Jacobian (row-major [i * d + j] = ∂out_i/∂in_j) is zero wherever
/// `allowed i j` is false, with a non-zero diagonal.
let private checkPattern (what: string) (d: int) (allowed: int -> int -> bool) (rows: float[][]) =
    rows |> Array.iteri (fun r jacobian ->
        for i in 0 .. d - 1 do
            if jacobian[i * d + i] = 0.0 then failwith $"{what}: row {r} has a zero diagonal at {i}"
            for j in 0 .. d - 1 do
                if not (allowed i j) && jacobian[i * d + j] <> 0.0 then
                    failwith $"{what}: row {r}: output {i} depends on input {j} (∂ = {jacobian[i * d + j]})")

[<Theory; MemberData(nameof autoregressiveNames)>]
let ``autoregressive Jacobians are triangular in the declared order`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let degree = Settings.ints "order" case.Bijector.Settings
        Assert.Equal(case.Dim, degree.Length)
        // output i may read input j only when j comes no later in the order
        let allowed i j = degree[j] <= degree[i]
        let forward x = fst (Bijector.forward case.Context x case.Bijector)
        let inverse y = fst (Bijector.inverse case.Context y case.Bijector)
        checkPattern $"{name} forward" case.Dim allowed (Reference.jacobianRows forward case.X)
        checkPattern $"{name} inverse" case.Dim allowed (Reference.jacobianRows inverse case.Y))

/// The conditioning features of a coupling mask, as Coupling.Mask documents each name.
let private conditioning (dim: int) (mask: string) =
    let flipped = mask.Contains "flipped"
    let first =
        match mask with
        | m when m.StartsWith "half" -> fun i -> i < dim / 2
        | m when m.StartsWith "alternating" -> fun i -> i % 2 = 0
        | m when m.StartsWith "checkerboard" ->
            let size = m.Substring(m.IndexOf ':' + 1).Split 'x'
            let height, width = int size[0], int size[1]
            fun i -> let p = i % (height * width) in (p / width + p % width) % 2 = 0
        | other -> failwith $"unknown mask '{other}'"
    fun i -> first i <> flipped

[<Theory; MemberData(nameof couplingNames)>]
let ``coupling Jacobians are the identity on the conditioning features and diagonal on the rest`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let isA = conditioning case.Dim (Settings.text "mask" case.Bijector.Settings)
        Assert.True(Array.init case.Dim isA |> Array.exists id, "no conditioning feature")
        // rows of A are unit vectors; rows of B read A and their own feature only
        let allowed i j = i = j || (not (isA i) && isA j)
        let forward x = fst (Bijector.forward case.Context x case.Bijector)
        let inverse y = fst (Bijector.inverse case.Context y case.Bijector)
        for what, rows in [ "forward", Reference.jacobianRows forward case.X; "inverse", Reference.jacobianRows inverse case.Y ] do
            checkPattern $"{name} {what}" case.Dim allowed rows
            for row in rows do
                for i in 0 .. case.Dim - 1 do
                    if isA i then Close.scalar $"{name} {what}: ∂y_{i}/∂x_{i}" { Abs = 0.0; Rel = 0.0 } 1.0 row[i * case.Dim + i])

let private mafSpec (g: Generator) (clamp: float) : Autoregressive.Spec =
    let dim = (g.integers([| 1 |], 1, 6)).toArrayInt()[0]
    let orderSeed = (g.integers([| 1 |], 0, 1000)).toArrayInt()[0]
    { Dim = dim; Hidden = [ 6 ]; Order = Order.Random orderSeed; Activation = Activation.Relu
      ResidualBlocks = 0; Clamp = clamp; ContextDim = 0 }

[<Fact>]
let ``the MAF log-scale stays within its clamp however large the network outputs`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let clamp = 0.5 + 3.0 * (g.uniform([| 1 |], dtype = Dtype.Float64)).toScalar()
        let spec = mafSpec g clamp
        let maf = Autoregressive.create g Dtype.Float64 spec |> Entry.perturb g 100.0
        let y = Draw.normal g [| 16; spec.Dim |] * 100.0
        let z, logDet = Bijector.inverse Context.none y maf
        // atan saturates to π/2 in floating point: the bound may be met, to rounding
        let bound = float spec.Dim * clamp * (1.0 + 1e-12)
        for v in logDet.toArray64() do
            if not (abs v <= bound) then failwith $"log-det {v} outside ±{bound}"
        if (z.isnan() + z.isinf()).sum().toScalar() > 0.0 then failwith $"non-finite base points {z}")

[<Fact>]
let ``the IAF is the MAF run backwards, and inverting it again gives the MAF`` () =
    Gens.check 20 Gens.seed (fun seed ->
        let spec = mafSpec (Draw.generator seed) 3.0
        let maf = Autoregressive.create (Generator(uint64 seed)) Dtype.Float64 spec |> Entry.perturb (Generator(uint64 seed + 1UL)) 0.3
        let iaf = { Autoregressive.iaf (Generator(uint64 seed)) Dtype.Float64 spec with Params = maf.Params }
        let twice = Bijector.invert (Bijector.invert maf)
        let x = Draw.normal (Draw.generator seed) [| 8; spec.Dim |]
        let same (what: string) (expected: Tensor * Tensor) (actual: Tensor * Tensor) =
            Close.tensors $"{what} output" Tolerance.float64 (fst expected) (fst actual)
            Close.tensors $"{what} log-det" Tolerance.float64 (snd expected) (snd actual)
        Assert.Equal("iaf", iaf.Name)
        same "IAF sampling" (Bijector.inverse Context.none x maf) (Bijector.forward Context.none x iaf)
        same "IAF density" (Bijector.forward Context.none x maf) (Bijector.inverse Context.none x iaf)
        same "inverse of the inverse, forward" (Bijector.forward Context.none x maf) (Bijector.forward Context.none x twice)
        same "inverse of the inverse, inverse" (Bijector.inverse Context.none x maf) (Bijector.inverse Context.none x twice))

[<Theory; MemberData(nameof conditionalNames)>]
let ``conditional flows give different densities for different contexts and the same for the same`` (name: string) =
    LawCase.check 5 (Fixtures.find name) (fun case ->
        let g = Generator(uint64 case.Seed + 3UL)
        let flow = Flow.create (Distribution.standardNormal [| case.Dim |] Dtype.Float64) [ case.Bijector ]
        // 32 rows, so that the share of rows a context leaves alone is measured, not a single row
        let c = g.normal([| 32; case.Context.Condition.Value.shape[1] |], dtype = Dtype.Float64)
        // inside every spline's interval, where the context has something to change
        let y = g.uniform([| 32; case.Dim |], -2.0, 2.0, Dtype.Float64)
        let logProb (condition: Tensor) = (Flow.logProb (Context.ofCondition condition) y flow).toArray64()
        let first = logProb c
        Close.arrays $"{name}: same context" { Abs = 0.0; Rel = 0.0 } first (logProb (Tensor.ofArray(c.toArray64(), c.shape)))
        let other = logProb (c + Draw.normal g c.shape)
        // a ReLU conditioner (Glow's channel coupling) can be dead at every pixel of a row for both
        // contexts, so a row may rightly keep its density; a context that is ignored changes none
        let unchanged = Array.map2 (fun (a: float) b -> abs (a - b) < 1e-9) first other |> Array.filter id |> Array.length
        if 4 * unchanged > first.Length then
            failwith $"{name}: {unchanged} of {first.Length} rows have the same log q under both contexts")
