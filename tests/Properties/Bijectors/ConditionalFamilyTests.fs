/// Conditional B-NAF, residual blocks, Glow (channel couplings, factor-out and top priors), CNF,
/// OT-Flow and flow matching, beyond the law suite: the context changes the density; for one fixed
/// context each layer equals its unconditional twin with the context folded into a bias by hand; the
/// density for a fixed context integrates to one on the line; the class-conditional prior is the
/// Gaussian it claims; adjoint gradients reach the context; bad contexts are refused by name; and
/// conditional models survive save and load bit for bit.
module Flows.Properties.Bijectors.ConditionalFamilyTests

open System
open System.IO
open Xunit
open Flows
open Flows.Bijectors
open Flows.Continuous
open Flows.Distributions
open Flows.Io
open Flows.Ode
open Flows.Tensors
open Flows.Training
open Flows.Laws
open Flows.Properties.Support

/// The conditional entries this issue adds.
let names : seq<obj[]> =
    [ "conditional-bnaf"; "conditional-residual"; "conditional-cnf"; "conditional-ot-flow"
      "conditional-channel-coupling"; "context-prior"; "conditional-glow" ]
    |> Seq.map (fun n -> [| box n |])

/// The conditional row flows, whose dimension may be 1.
let rowNames : seq<obj[]> =
    [ "conditional-bnaf"; "conditional-residual"; "conditional-cnf"; "conditional-ot-flow" ] |> Seq.map (fun n -> [| box n |])

// One random instance of an entry at its largest dimension, a batch of rows and a context width.
let private instance (name: string) (seed: int) =
    let entry = Fixtures.find name
    let g = Draw.generator seed
    let dim = List.max entry.Dims
    let b = entry.Random g Dtype.Float64 dim
    entry, b, dim, entry.ContextDim.Value, g

// The same context row for every one of `rows` rows.
let private repeated (rows: int) (c: Tensor) = Context.ofCondition (c.expand([| rows; c.shape[1] |]))

[<Theory; MemberData(nameof names)>]
let ``two contexts give different densities at the same points`` (name: string) =
    Gens.check 3 Gens.seed (fun seed ->
        let _, b, dim, contextDim, g = instance name seed
        let flow = Flow.create (Distribution.standardNormal [| dim |] Dtype.Float64) [ b ]
        let x = Draw.normal g [| 8; dim |]
        let c1, c2 = Draw.normal g [| 1; contextDim |], Draw.normal g [| 1; contextDim |]
        let gap = (Flow.logProb (repeated 8 c1) x flow - Flow.logProb (repeated 8 c2) x flow).abs().max().toScalar()
        if not (gap > 1e-3) then failwith $"{name}: log q(x | c) moved by at most {gap} between two contexts")

// The unconditional twin of a conditional layer for one context row c [1; C]: the context's share
// of the first layer (a bias, or the input columns of c) becomes a constant bias, by hand.
let private fold (name: string) (b: Bijector) (c: Tensor) : Bijector =
    let p = b.Params
    let dropped = set [ "context.weight"; "net.context.weight" ]
    let keep (updates: (string * Tensor) list) =
        let replaced = Map.ofList updates
        Params.ofList [ for n in p.Names do if not (dropped.Contains n) then yield n, defaultArg (replaced.TryFind n) p[n] ]
    // c Wᵀ as a vector
    let times (w: Tensor) = c.matmul(w.transpose()).reshape [| -1 |]
    let parameters, twinName =
        match name with
        | "conditional-bnaf" -> keep [ "0.bias", p["0.bias"] + times p["context.weight"] ], "bnaf"
        | "conditional-residual" -> keep [ "0.bias", p["0.bias"] + times p["context.weight"] ], "residual"
        | "conditional-channel-coupling" -> keep [ "net.in.bias", p["net.in.bias"] + times p["net.context.weight"] ], "channel-coupling"
        | "conditional-cnf" ->
            // the MLP reads [z; t; c]: the last C input columns act on the constant c
            let w = p["0.weight"]
            let inputs = w.shape[1] - c.shape[1]
            keep [ "0.weight", w.narrow(1, 0, inputs); "0.bias", p["0.bias"] + times (w.narrow(1, inputs, c.shape[1])) ], "cnf"
        | "conditional-ot-flow" ->
            // s = [x; t; c]: K₀'s c-columns join the bias, and ½‖A_s s + A_c c‖² = ½‖A_s s‖² +
            // sᵀA_sᵀA_c c + a constant, whose linear part joins b (a constant moves no trajectory)
            let k, a = p["layer.0.weight"], p["a"]
            let inputs = k.shape[1] - c.shape[1]
            let aS, aC = a.narrow(1, 0, inputs), a.narrow(1, inputs, c.shape[1])
            keep
                [ "layer.0.weight", k.narrow(1, 0, inputs)
                  "layer.0.bias", p["layer.0.bias"] + times (k.narrow(1, inputs, c.shape[1]))
                  "a", aS
                  "b", p["b"].narrow(0, 0, inputs) + aS.transpose().matmul(aC.matmul(c.reshape [| -1; 1 |])).reshape [| -1 |] ], "ot-flow"
        | other -> failwith $"no fold for {other}"
    let settings = b.Settings |> Map.add "contextDim" (Setting.Int 0)
    { (Fixtures.find twinName).Build Dtype.Float64 settings with Params = parameters; Buffers = b.Buffers }

/// The entries whose context enters as a first-layer bias.
let foldNames : seq<obj[]> =
    [ "conditional-bnaf"; "conditional-residual"; "conditional-cnf"; "conditional-ot-flow"; "conditional-channel-coupling" ]
    |> Seq.map (fun n -> [| box n |])

[<Theory; MemberData(nameof foldNames)>]
let ``for one fixed context the layer is its unconditional twin with the context folded into a bias`` (name: string) =
    Gens.check 3 Gens.seed (fun seed ->
        let entry, b, dim, contextDim, g = instance name seed
        let c = Draw.normal g [| 1; contextDim |]
        let twin = fold name b c
        let x = Draw.normal g [| 6; dim |]
        let ctx = repeated 6 c
        let tolerance = { Abs = 1e-7; Rel = 1e-7 }
        let y, logDet = Bijector.forward ctx x b
        let y', logDet' = Bijector.forward Context.none x twin
        Close.tensors $"{name}: forward" tolerance y' y
        Close.tensors $"{name}: forward log-det" tolerance logDet' logDet
        let z, inverseLogDet = Bijector.inverse ctx x b
        let z', inverseLogDet' = Bijector.inverse Context.none x twin
        Close.tensors $"{name}: inverse" (LawCase.roundTrip entry) z' z
        Close.tensors $"{name}: inverse log-det" (LawCase.logDet entry) inverseLogDet' inverseLogDet)

[<Theory; MemberData(nameof rowNames)>]
let ``the density for a fixed context integrates to one on the line`` (name: string) =
    let entry = Fixtures.find name
    for seed in [ 3; 4 ] do
        let g = Generator(uint64 seed)
        let flow = Flow.create (Distribution.standardNormal [| 1 |] Dtype.Float64) [ entry.Random g Dtype.Float64 1 ]
        let c = Draw.normal g [| 1; entry.ContextDim.Value |]
        // the midpoint rule on [−12, 12]: tails beyond hold under 1e-6 of the mass for these instances
        let n, bound = 2400, 12.0
        let h = 2.0 * bound / float n
        let x = Tensor.linspace(-bound + h / 2.0, bound - h / 2.0, n, Dtype.Float64).reshape [| n; 1 |]
        let logZ = (Flow.logProb (repeated n c) x flow).logsumexp(0).toScalar() + log h
        Close.scalar $"{name} (seed {seed}): log ∫ q(x | c) dx" { Abs = 2e-3; Rel = 0.0 } 0.0 logZ

[<Fact>]
let ``the class-conditional prior is N(μ(c), exp(logs(c))²) per channel, computed by hand`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let image = [| 2; 1; 3 |]
        let prior = ContextPrior.create Dtype.Float64 5.0 3 image |> Entry.perturb g 0.5
        let flow = Flow.create (Distribution.standardNormal image Dtype.Float64) [ prior ]
        let x, c = Draw.normal g [| 4; 2; 1; 3 |], Draw.normal g [| 4; 3 |]
        let raw = (c.matmul(prior.Params["context.weight"].transpose()) + prior.Params["context.bias"]).toArray64()
        let xs = x.toArray64()
        let expected =
            Array.init 4 (fun r ->
                Seq.sum (seq {
                    for channel in 0 .. 1 do
                        let mean = raw[r * 4 + channel]
                        // the soft clamp (2·5/π)·atan(raw / 5) bounds the log-scale
                        let logScale = 10.0 / Math.PI * atan (raw[r * 4 + 2 + channel] / 5.0)
                        for pixel in 0 .. 2 do
                            let e = (xs[r * 6 + channel * 3 + pixel] - mean) / exp logScale
                            yield -0.5 * (e * e + log (2.0 * Math.PI)) - logScale }))
        Close.arrays "log N(x; μ(c), exp(logs(c))²)" Tolerance.float64 expected ((Flow.logProb (Context.ofCondition c) x flow).toArray64()))

[<Theory; MemberData(nameof names)>]
let ``a missing context or one of the wrong width is refused by name`` (name: string) =
    let _, b, dim, contextDim, _ = instance name 1
    let x = Tensor.zeros([| 4; dim |], Dtype.Float64)
    let missing = Assert.ThrowsAny<ArgumentException>(fun () -> Bijector.inverse Context.none x b |> ignore)
    Assert.Equal("context", missing.ParamName)
    Assert.Contains($"{contextDim} features", missing.Message)
    let wrong = Assert.ThrowsAny<ArgumentException>(fun () -> Bijector.forward (Context.ofCondition (Tensor.zeros([| 4; contextDim + 1 |], Dtype.Float64))) x b |> ignore)
    Assert.Equal("context", wrong.ParamName)
    Assert.Contains($"expected a context [4; {contextDim}]", wrong.Message)

[<Fact>]
let ``adjoint gradients of a conditional CNF, the context's included, match backpropagation`` () =
    let g = Generator 9UL
    let options gradient = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-9; Gradient = gradient; ContextDim = 2 }
    let backprop = Cnf.createWith (options CnfGradient.Backprop) g Dtype.Float64 2 |> Entry.perturb g 0.3
    let adjoint = { Cnf.createWith (options CnfGradient.Adjoint) g Dtype.Float64 2 with Params = backprop.Params }
    let x, c = Draw.normal g [| 5; 2 |], Draw.normal g [| 5; 2 |]
    let gradients (b: Bijector) =
        let p = b.Params
        Ad.gradN (fun values ->
            let z, logDet = b.Inverse (p.WithValues values[.. p.Count - 1]) (Context.ofCondition values[p.Count]) x
            (z.square().sum(1) * 0.5 - logDet).sum()) (Array.append p.Values [| c |])
    let expected, actual = gradients backprop, gradients adjoint
    if expected[expected.Length - 1].abs().sum().toScalar() = 0.0 then failwith "the context's gradient is zero"
    Array.iteri2 (fun i (e: Tensor) (a: Tensor) -> Close.tensors $"gradient {i}" { Abs = 1e-6; Rel = 1e-5 } e a) expected actual

[<Fact>]
let ``a conditional CNF's Hutchinson log-det averages to the exact one`` () =
    let g = Generator 12UL
    let options trace = { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-7; Trace = trace; ContextDim = 2 }
    let exact = Cnf.createWith (options CnfTrace.Exact) g Dtype.Float64 2 |> Entry.perturb g 0.5
    let estimated = { Cnf.createWith (options (CnfTrace.Hutchinson(Noise.Rademacher, Generator 4UL))) g Dtype.Float64 2 with Params = exact.Params }
    // one row and one context repeated: each copy draws its own probe, so the rows are independent estimates
    let n = 2000
    let x1, c = Draw.normal g [| 1; 2 |], Draw.normal g [| 1; 2 |]
    let truth = (snd (Bijector.inverse (Context.ofCondition c) x1 exact)).toScalar()
    let _, estimates = Bijector.inverse (repeated n c) (x1.expand([| n; 2 |])) estimated
    let e = estimates.toArray64()
    let mean = Array.average e
    let se = sqrt ((e |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (n - 1) / float n)
    if se = 0.0 then failwith "the estimates do not vary: the probes are not per row"
    if abs (mean - truth) > 4.0 * se then failwith $"Hutchinson mean {mean} ± {se} against the exact {truth}"

let private roundTrip (model: Model) =
    let dir = Path.Combine(Path.GetTempPath(), $"flows-test-{Guid.NewGuid():N}")
    try
        ModelFile.save dir model
        ModelFile.load dir
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)

let private bits (t: Tensor) = t.toArray64() |> Array.map BitConverter.DoubleToInt64Bits

[<Theory; MemberData(nameof names)>]
let ``a conditional model saved and loaded gives bit-identical conditional densities`` (name: string) =
    let _, b, dim, contextDim, g = instance name 2
    let model = Model.ofFlow contextDim (Flow.create (Distribution.standardNormal [| dim |] Dtype.Float64) [ b ])
    let loaded = roundTrip model
    Assert.Equal(contextDim, loaded.ContextDim)
    let x, ctx = Draw.normal g [| 5; dim |], Context.ofCondition (Draw.normal g [| 5; contextDim |])
    Assert.Equal<int64[]>(bits (Model.logProb ctx x model), bits (Model.logProb ctx x loaded))

[<Fact>]
let ``a conditional flow-matching model saved and loaded samples and scores the same`` () =
    let g = Generator 6UL
    let flow = FlowMatching.create { Cnf.defaults with Hidden = [ 8 ]; Tolerance = 1e-8; ContextDim = 2 } g Dtype.Float64 2
    let flow = { flow with Layers = flow.Layers |> List.map (Entry.perturb g 0.3) }
    let model = { Model.ofFlow 2 flow with Fitting = Fitting.FlowMatching 1e-3 }
    let loaded = roundTrip model
    Assert.Equal(Fitting.FlowMatching 1e-3, loaded.Fitting)
    let ctx = Context.ofCondition (Draw.normal g [| 4; 2 |])
    let sample (m: Model) = FlowMatching.sampleConditional (Solver.Rk4 8) ctx (Generator 1UL) m.Flow
    Assert.Equal<int64[]>(bits (sample model), bits (sample loaded))
    Assert.Equal<int64[]>(bits (Model.logProb ctx (sample model) model), bits (Model.logProb ctx (sample model) loaded))

[<Fact>]
let ``conditional flow matching learns N(1.5c, 0.5²) for c = ±1 and scores the closed-form density for each`` () =
    let sigmaMin, s = 1e-3, 0.5
    let g = Generator 21UL
    let n = 8192
    let context = g.rademacher([| n; 1 |], Dtype.Float64)
    let data = context * 1.5 + g.normal([| n; 1 |], 0.0, s, Dtype.Float64)
    let model = FlowMatching.create { Cnf.defaults with Hidden = [ 32; 32 ]; Tolerance = 1e-8; ContextDim = 1 } (Generator 3UL) Dtype.Float64 1
    // held-out rows [x | c], as the conditional source batches them: validation must split off c
    let heldContext = g.rademacher([| 256; 1 |], Dtype.Float64)
    let held = heldContext * 1.5 + g.normal([| 256; 1 |], 0.0, s, Dtype.Float64)
    let options =
        { TrainOptions.defaults with
            Steps = 4000; BatchSize = 256; LearningRate = 3e-3; Seed = 5UL; Schedule = Schedule.Cosine(4000, 0.02)
            Validation = Some(Tensor.cat([| held; heldContext |], 1)); ValidateEvery = 1000 }
    let trained, report = Train.fit options (FlowMatching.objective sigmaMin (DataSource.Conditional(data, context))) model |> Train.result
    // the kept flow is the best-validated one: its held-out NLL is the smallest validation
    let best = report.Validations |> Array.map snd |> Array.min
    Close.scalar "best validation against the kept flow's held-out NLL" { Abs = 1e-9; Rel = 1e-9 } best
        (-((Flow.logProb (Context.ofCondition heldContext) held trained).mean().toScalar()))
    let variance = sigmaMin * sigmaMin + s * s
    for c in [ -1.0; 1.0 ] do
        let mu = 1.5 * c
        let x = Tensor.linspace(mu - 1.5 * s, mu + 1.5 * s, 9, Dtype.Float64).reshape [| 9; 1 |]
        let expected = x.toArray64() |> Array.map (fun v -> -0.5 * ((v - mu) ** 2.0 / variance + log (2.0 * Math.PI * variance)))
        let actual = (Flow.logProb (repeated 9 (Tensor.full([| 1; 1 |], c, Dtype.Float64))) x trained).toArray64()
        Close.arrays $"log p(x | c = {c})" { Abs = 0.1; Rel = 0.0 } expected actual
        // samples for this context sit around its own mean, far from the other one's
        let samples = FlowMatching.sampleConditional (Solver.Rk4 16) (repeated 2000 (Tensor.full([| 1; 1 |], c, Dtype.Float64))) (Generator 8UL) trained
        Close.scalar $"sample mean given c = {c}" { Abs = 0.06; Rel = 0.0 } mu (samples.mean().toScalar())

[<Fact>]
let ``an unconditional field or RNODE asked of a conditional CNF is refused by name`` () =
    let flow = FlowMatching.create { Cnf.defaults with Hidden = [ 4 ]; ContextDim = 2 } (Generator 1UL) Dtype.Float64 2
    let error = Assert.ThrowsAny<ArgumentException>(fun () -> FlowMatching.sample (Solver.Rk4 4) (Generator 1UL) 3 flow |> ignore)
    Assert.Equal("context", error.ParamName)
    let rnode = Assert.ThrowsAny<ArgumentException>(fun () ->
        CnfTraining.rnodeLoss { Kinetic = 0.1; Jacobian = 0.1 } None None (Flow.parameters flow) (Generator 1UL) (Tensor.zeros([| 3; 2 |], Dtype.Float64)) flow |> ignore)
    Assert.Contains("unconditional CNF", rnode.Message)

[<Fact>]
let ``the conditional OT-Flow objective's NLL on a [x | c] batch is the flow's conditional NLL`` () =
    let g = Generator 14UL
    let layer = OtFlow.createWith { OtFlow.defaults with Width = 6; Rank = 2; Tolerance = 1e-9; ContextDim = 2 } g Dtype.Float64 2 |> Entry.perturb g 0.2
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ layer ]
    let x, c = Draw.normal g [| 7; 2 |], Draw.normal g [| 7; 2 |]
    let loss = CnfTraining.otFlowLoss { Transport = 1.0; Hjb = 1.0 } None (Flow.parameters flow) (Tensor.cat([| x; c |], 1)) flow
    // the objective integrates [x; ℓ; L; R] in one solve, the flow its own inverse: two routes to the NLL
    Close.scalar "NLL" { Abs = 1e-6; Rel = 1e-6 } (-((Flow.logProb (Context.ofCondition c) x flow).mean().toScalar())) (loss.Nll.toScalar())
    let other = CnfTraining.otFlowLoss { Transport = 1.0; Hjb = 1.0 } None (Flow.parameters flow) (Tensor.cat([| x; -c |], 1)) flow
    if not (abs (other.Nll.toScalar() - loss.Nll.toScalar()) > 1e-3) then failwith "the objective ignores the context"
