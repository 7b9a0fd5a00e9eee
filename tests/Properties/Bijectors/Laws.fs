/// The law suite: every law of design.md on every catalogue entry (one test case per entry),
/// random parameters away from the initial ones, random dimension and batch, in float64.
module Flows.Properties.Bijectors.Laws

open System
open Xunit
open Flows
open Flows.Distributions
open Flows.Tensors
open Flows.Properties.Support

let private namesWhere (keep: Entry -> bool) : seq<obj[]> =
    Catalogue.all |> Seq.filter keep |> Seq.map (fun e -> [| box e.Name |])

/// Every catalogue entry.
let names = namesWhere (fun _ -> true)
/// Entries that promise the identity at initialisation.
let identityNames = namesWhere (fun e -> e.IdentityAtInit)
/// Entries with learnable parameters.
let learnableNames = namesWhere (fun e -> (e.Create (Generator 1UL) Dtype.Float64 (List.head e.Dims)).Params.Count > 0)
/// Entries whose inverse accepts only part of the real line.
let boundedNames = namesWhere (fun e -> e.Domain <> Domain.Real)
/// Entries that map the plane to the plane (for the normalisation law).
let planarNames = namesWhere (fun e -> e.Domain = Domain.Real && List.contains 2 e.Dims && e.ContextDim.IsNone)

let private forward (case: LawCase) (x: Tensor) = Bijector.forward case.Context x case.Bijector
let private inverse (case: LawCase) (y: Tensor) = Bijector.inverse case.Context y case.Bijector

[<Theory; MemberData(nameof names)>]
let ``inverse undoes forward`` (name: string) =
    LawCase.check 10 (Catalogue.find name) (fun case ->
        let y, _ = forward case case.X
        let x, _ = inverse case y
        Close.tensors $"{name}: inverse(forward(x))" (LawCase.roundTrip case.Entry) case.X x)

[<Theory; MemberData(nameof names)>]
let ``forward undoes inverse`` (name: string) =
    LawCase.check 10 (Catalogue.find name) (fun case ->
        let x, _ = inverse case case.Y
        let y, _ = forward case x
        Close.tensors $"{name}: forward(inverse(y))" (LawCase.roundTrip case.Entry) case.Y y)

[<Theory; MemberData(nameof names)>]
let ``forward log-det equals log|det| of the autodiff Jacobian`` (name: string) =
    LawCase.check 8 (Catalogue.find name) (fun case ->
        let _, logDet = forward case case.X
        let expected = Reference.logAbsDetJacobian (fun x -> fst (forward case x)) case.X
        Close.arrays $"{name}: forward log-det" (LawCase.logDet case.Entry) expected (logDet.toArray64()))

[<Theory; MemberData(nameof names)>]
let ``inverse log-det equals log|det| of the inverse's autodiff Jacobian`` (name: string) =
    LawCase.check 8 (Catalogue.find name) (fun case ->
        let _, logDet = inverse case case.Y
        let expected = Reference.logAbsDetJacobian (fun y -> fst (inverse case y)) case.Y
        Close.arrays $"{name}: inverse log-det" (LawCase.logDet case.Entry) expected (logDet.toArray64()))

[<Theory; MemberData(nameof names)>]
let ``inverse log-det is minus the forward log-det at the matching point`` (name: string) =
    LawCase.check 10 (Catalogue.find name) (fun case ->
        let y, forwardLogDet = forward case case.X
        let _, inverseLogDet = inverse case y
        Close.arrays $"{name}: log-dets" (LawCase.logDet case.Entry) (forwardLogDet.toArray64() |> Array.map (~-)) (inverseLogDet.toArray64()))

[<Theory; MemberData(nameof names)>]
let ``a composition's log-det is the sum of its layers' and its inverse runs them backwards`` (name: string) =
    LawCase.check 6 (Catalogue.find name) (fun case ->
        let second = case.Entry.Random (Generator(uint64 case.Seed + 1UL)) Dtype.Float64 case.Dim
        let layers = [ case.Bijector; second ]
        let y1, ld1 = forward case case.X
        let y2, ld2 = Bijector.forward case.Context y1 second
        let y, logDet = Compose.forward case.Context case.X layers
        Close.tensors $"{name}: composed output" Tolerance.float64 y2 y
        Close.tensors $"{name}: composed log-det" Tolerance.float64 (ld1 + ld2) logDet
        let x, _ = Compose.inverse case.Context y layers
        Close.tensors $"{name}: composed inverse" (LawCase.roundTrip case.Entry) case.X x)

[<Theory; MemberData(nameof names)>]
let ``a batch gives the same rows as the rows one by one`` (name: string) =
    LawCase.check 5 (Catalogue.find name) (fun case ->
        let y, logDet = forward case case.X
        for i in 0 .. case.X.shape[0] - 1 do
            let yi, ldi = Bijector.forward (Reference.contextRow i case.Context) (Reference.row i case.X) case.Bijector
            Close.tensors $"{name}: row {i}" (LawCase.roundTrip case.Entry) (Reference.row i y) yi
            Close.tensors $"{name}: row {i} log-det" (LawCase.logDet case.Entry) (logDet.narrow(0, i, 1)) ldi)

[<Theory; MemberData(nameof names)>]
let ``float32 agrees with float64`` (name: string) =
    LawCase.check 5 (Catalogue.find name) (fun case ->
        let single (t: Tensor) = t.cast Dtype.Float32
        let b32 = { case.Bijector with Params = case.Bijector.Params.Map single; Buffers = case.Bijector.Buffers.Map single }
        let ctx32 = { case.Context with Condition = case.Context.Condition |> Option.map single }
        let y, logDet = forward case case.X
        let y32, logDet32 = Bijector.forward ctx32 (single case.X) b32
        let loose = { Abs = 1e-3; Rel = 1e-3 }
        Close.tensors $"{name}: float32 output" loose y (y32.cast Dtype.Float64)
        Close.tensors $"{name}: float32 log-det" loose logDet (logDet32.cast Dtype.Float64))

[<Theory; MemberData(nameof identityNames)>]
let ``the initial bijector is the identity`` (name: string) =
    LawCase.check 5 (Catalogue.find name) (fun case ->
        let b = case.Entry.Create (Generator(uint64 case.Seed)) Dtype.Float64 case.Dim
        let y, logDet = Bijector.forward case.Context case.X b
        Close.tensors $"{name}: initial output" Tolerance.float64 case.X y
        Close.tensors $"{name}: initial log-det" Tolerance.float64 (logDet.zerosLike()) logDet)

let private finite (what: string) (t: Tensor) =
    if (t.isnan() + t.isinf()).sum().toScalar() > 0.0 then failwith $"{what}: non-finite values in {t}"

[<Theory; MemberData(nameof names)>]
let ``outputs stay finite at extreme inputs`` (name: string) =
    LawCase.check 5 (Catalogue.find name) (fun case ->
        let batch, dim = case.X.shape[0], case.Dim
        let signs = (Generator(uint64 case.Seed)).rademacher([| batch; dim |], Dtype.Float64)
        let y, logDet = forward case (signs * 30.0)
        finite $"{name}: forward at ±30" y
        finite $"{name}: forward log-det at ±30" logDet
        let edge =
            match case.Entry.Domain with
            | Domain.Real -> signs * 1e3
            | Domain.Positive -> (signs * 12.0).exp()
            | Domain.Interval(low, high) -> Tensor.where(signs.gt(signs.zerosLike()), signs.fullLike(high - 1e-6 * (high - low)), signs.fullLike(low + 1e-6 * (high - low)))
        let x, inverseLogDet = inverse case edge
        finite $"{name}: inverse near the domain edge" x
        finite $"{name}: inverse log-det near the domain edge" inverseLogDet)

[<Theory; MemberData(nameof boundedNames)>]
let ``inputs outside the domain raise a clear error`` (name: string) =
    LawCase.check 3 (Catalogue.find name) (fun case ->
        let outside =
            match case.Entry.Domain with
            | Domain.Positive -> -case.Y
            | Domain.Interval(low, high) -> case.Y + (high - low) * 2.0
            | Domain.Real -> failwith "unbounded domain"
        let error = Assert.ThrowsAny<ArgumentException>(fun () -> inverse case outside |> ignore)
        Assert.Contains(name, error.Message))

[<Theory; MemberData(nameof names)>]
let ``a flow rejects rows of the wrong size with a clear error`` (name: string) =
    let entry = Catalogue.find name
    let flow = Flow.create (Distribution.standardNormal [| List.head entry.Dims |] Dtype.Float64) [ entry.Create (Generator 3UL) Dtype.Float64 (List.head entry.Dims) ]
    let wrong = Tensor.zeros([| 4; List.head entry.Dims + 1 |], Dtype.Float64)
    let error = Assert.Throws<ArgumentException>(fun () -> Flow.logProb Context.none wrong flow |> ignore)
    Assert.Equal("x", error.ParamName)
    Assert.Contains(Shape.show wrong.shape, error.Message)

[<Theory; MemberData(nameof learnableNames)>]
let ``every parameter gets a finite gradient, non-zero exactly when it moves the density`` (name: string) =
    LawCase.check 4 (Catalogue.find name) (fun case ->
        let flow = Flow.create (Distribution.standardNormal [| case.Dim |] Dtype.Float64) [ case.Bijector ]
        let p = Flow.parameters flow
        let nll (values: Tensor[]) = -((Flow.logProbWith (p.WithValues values) case.Context case.Y flow).mean())
        let grads = Ad.gradN nll p.Values
        let noise = Generator(uint64 case.Seed + 7UL)
        Array.iteri2 (fun i (n: string) (g: Tensor) ->
            finite $"{name}: gradient of {n}" g
            // independent of autodiff: does nudging this tensor change the density at all? (masked
            // entries, e.g. the strict triangles of a 1 x 1 matrix, do not)
            let nudged = p.Values |> Array.mapi (fun j v -> if i = j then v + noise.normal(v.shape, 0.0, 1e-3, Dtype.Float64) else v)
            let moves = abs ((nll nudged).toScalar() - (nll p.Values).toScalar()) > 1e-12
            let size = g.abs().sum().toScalar()
            if moves && size = 0.0 then failwith $"{name}: {n} changes the density but its gradient is zero"
            // a tensor that cannot matter may still collect rounding (1 x 1 Householder: −1 for any v)
            if not moves && size > 1e-6 then failwith $"{name}: {n} does not change the density but its gradient is {g}") p.Names grads)

[<Theory; MemberData(nameof names)>]
let ``sampling with log-density in one pass equals sampling then scoring`` (name: string) =
    LawCase.check 4 (Catalogue.find name) (fun case ->
        let flow = Flow.create (Distribution.standardNormal [| case.Dim |] Dtype.Float64) [ case.Bijector ]
        let n = case.X.shape[0]
        let ctx = case.Context
        let x, logQ = Flow.sampleAndLogProb ctx (Generator(uint64 case.Seed)) n flow
        let x' = Flow.sample ctx (Generator(uint64 case.Seed)) n flow
        Close.tensors $"{name}: samples" Tolerance.float64 x x'
        Close.tensors $"{name}: log q" (LawCase.logDet case.Entry) logQ (Flow.logProb ctx x flow))

[<Theory; MemberData(nameof planarNames)>]
let ``a flow on the plane integrates to one`` (name: string) =
    let entry = Catalogue.find name
    let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ entry.Random (Generator 11UL) Dtype.Float64 2 ]
    let logZ = Targets.logNormaliser 9.0 360 (fun z -> Flow.logProb Context.none z flow)
    Close.scalar $"{name}: log ∫ q" { Abs = 5e-3; Rel = 0.0 } 0.0 logZ

[<Theory; MemberData(nameof names)>]
let ``rebuilding from settings gives the same map`` (name: string) =
    LawCase.check 3 (Catalogue.find name) (fun case ->
        // A loader knows only the bijector's own name: it must name an entry that rebuilds it.
        let rebuilt = { (Catalogue.find case.Bijector.Name).Build Dtype.Float64 case.Bijector.Settings with Params = case.Bijector.Params; Buffers = case.Bijector.Buffers }
        let y, logDet = forward case case.X
        let y', logDet' = Bijector.forward case.Context case.X rebuilt
        Close.tensors $"{name}: rebuilt output" Tolerance.float64 y y'
        Close.tensors $"{name}: rebuilt log-det" Tolerance.float64 logDet logDet')
