/// Flow.logProb scores large batches in blocks of rows on the CPU: the blocks must give what one
/// pass over all rows gives (logProbWith, which never blocks), contexts included.
module Flows.Properties.Flows.BlockedScoringTests

open Xunit
open Flows
open Flows.Bijectors
open Flows.Distributions
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

let private conditionalFlow (gen: Generator) =
    let layer flip =
        SplineCoupling.create gen Dtype.Float64
            { Dim = 3; Mask = Coupling.Mask.Half flip; Conditioner = Conditioner.Mlp([ 16 ], Activation.Relu)
              Spline = SplineKind.RationalQuadratic; Bins = 6; Bound = 3.0; ContextDim = 2 }
        |> Entry.perturb gen 0.3
    Flow.create (Distribution.standardNormal [| 3 |] Dtype.Float64) [ layer false; layer true ]

[<Theory>]
[<InlineData(1025)>]
[<InlineData(1536)>]
[<InlineData(2999)>]
let ``scoring in blocks equals one pass over every row`` (rows: int) =
    let gen = Generator(uint64 rows)
    let flow = conditionalFlow gen
    let x = gen.normal([| rows; 3 |], 0.0, 1.5, Dtype.Float64)
    let ctx = Context.ofCondition (gen.normal([| rows; 2 |], dtype = Dtype.Float64))
    let blocked = (Flow.logProb ctx x flow).toArray64()
    let onePass = (Flow.logProbWith (Flow.parameters flow) ctx x flow).toArray64()
    Assert.Equal(rows, blocked.Length)
    for i in 0 .. rows - 1 do
        Assert.True(abs (blocked[i] - onePass[i]) <= 1e-12 * (1.0 + abs onePass[i]), $"row {i}: {blocked[i]} against {onePass[i]}")
    // and each row's score depends on its own context: shifting the contexts changes every block
    let shifted = (Flow.logProb (Context.ofCondition (ctx.Condition.Value + 1.0)) x flow).toArray64()
    Assert.True(Array.forall2 (fun a b -> a <> b) blocked[.. 511] shifted[.. 511] && blocked[rows - 1] <> shifted[rows - 1])

let libraryNames : seq<obj[]> = Flows.Fixtures.Library.all |> Seq.filter (fun f -> f.LogDetKind <> LogDetKind.Estimated) |> Seq.map (fun f -> [| box f.Name |])

// Blocks reuse the memory of the blocks before them: a layer that kept a pooled intermediate
// (a cache filled while scoring) would read another block's numbers.
[<Theory; MemberData(nameof libraryNames)>]
let ``every library layer scores the same in blocks as in one pass`` (name: string) =
    let fixture = Flows.Fixtures.Library.find name
    let gen = Generator 5UL
    let dim = if List.contains 2 fixture.Dims then 2 else List.head fixture.Dims
    let layer = fixture.Random gen Dtype.Float64 dim
    let flow = Flow.create (Distribution.standardNormal layer.Event Dtype.Float64) [ layer ]
    let rows = 1100
    let x = (Flows.Laws.LawSample.inDomain gen fixture.Domain [| rows; dim |]).reshape(Array.append [| rows |] layer.Event)
    let ctx = match fixture.ContextDim with Some c -> Context.ofCondition (gen.normal([| rows; c |], dtype = Dtype.Float64)) | None -> Context.none
    let blocked = (Flow.logProb ctx x flow).toArray64()
    let onePass = (Flow.logProbWith (Flow.parameters flow) ctx x flow).toArray64()
    // adaptive solvers choose their steps per block, so iterative layers agree to their tolerance
    let tolerance = match fixture.InverseKind with InverseKind.Iterative t -> max 1e-6 (100.0 * t) | InverseKind.Exact -> 1e-10
    for i in 0 .. rows - 1 do
        Assert.True(abs (blocked[i] - onePass[i]) <= tolerance * (1.0 + abs onePass[i]), $"{name}, row {i}: {blocked[i]} against {onePass[i]}")

// Blocks run on several threads for the library's deterministic layers: repeated scoring gives the
// same numbers, bit for bit, whichever thread took which block.
[<Fact>]
let ``scoring on several threads gives the same scores on every call`` () =
    let gen = Generator 11UL
    let flow = conditionalFlow gen
    let x = gen.normal([| 5000; 3 |], dtype = Dtype.Float64)
    let ctx = Context.ofCondition (gen.normal([| 5000; 2 |], dtype = Dtype.Float64))
    let first = (Flow.logProb ctx x flow).toArray64()
    for _ in 1 .. 3 do
        Assert.Equal<float[]>(first, (Flow.logProb ctx x flow).toArray64())

// Differentiating through logProb must not reuse the memory the tape holds: a large batch with a
// recorded input is scored in one pass, and its gradient is the one-pass gradient.
[<Fact>]
let ``the gradient of a large batch's scores equals the one-pass gradient`` () =
    let gen = Generator 12UL
    let flow = conditionalFlow gen
    let x = gen.normal([| 3000; 3 |], dtype = Dtype.Float64)
    let ctx = Context.ofCondition (gen.normal([| 3000; 2 |], dtype = Dtype.Float64))
    let blocked = Ad.grad (fun x -> (Flow.logProb ctx x flow).sum()) x
    let onePass = Ad.grad (fun x -> (Flow.logProbWith (Flow.parameters flow) ctx x flow).sum()) x
    Assert.Equal<float[]>(onePass.toArray64(), blocked.toArray64())
