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
