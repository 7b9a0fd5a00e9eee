namespace Flows.Laws

open System
open Flows
open Flows.Distributions
open Flows.Tensors

/// Each law on one batch: the worst finding, or None where the law does not apply. The bijector
/// and the batch are in float64.
[<RequireQualifiedAccess>]
module internal Checks =

    let private forward (s: LawSample) (b: Bijector) (x: Tensor) = Bijector.forward s.Context x b
    let private inverse (s: LawSample) (b: Bijector) (y: Tensor) = Bijector.inverse s.Context y b
    let private rowOf (i: int) (t: Tensor) = t.narrow(0, i, 1)
    let private contextRow (i: int) (ctx: Context) = { ctx with Condition = ctx.Condition |> Option.map (rowOf i) }
    let private dimOf (b: Bijector) = Array.fold (*) 1 b.Event

    let inverseUndoesForward (o: LawOptions) (s: LawSample) (b: Bijector) =
        let y, _ = forward s b s.X
        let x, _ = inverse s b y
        Some(Finding.compare "inverse(forward(x))" o.RoundTrip s.X s.X x)

    let forwardUndoesInverse (o: LawOptions) (s: LawSample) (b: Bijector) =
        let x, _ = inverse s b s.Y
        let y, _ = forward s b x
        Some(Finding.compare "forward(inverse(y))" o.RoundTrip s.Y s.Y y)

    let forwardLogDet (o: LawOptions) (s: LawSample) (b: Bijector) =
        let _, logDet = forward s b s.X
        let expected = Jacobian.logAbsDet (fun x -> fst (forward s b x)) s.X
        Some(Finding.compare "forward log-det against log|det| of the autodiff Jacobian" o.LogDet s.X (Tensor.ofArray(expected, [| expected.Length |])) (logDet.cast Dtype.Float64))

    let inverseLogDet (o: LawOptions) (s: LawSample) (b: Bijector) =
        let _, logDet = inverse s b s.Y
        let expected = Jacobian.logAbsDet (fun y -> fst (inverse s b y)) s.Y
        Some(Finding.compare "inverse log-det against log|det| of the autodiff Jacobian" o.LogDet s.Y (Tensor.ofArray(expected, [| expected.Length |])) (logDet.cast Dtype.Float64))

    let logDetsCancel (o: LawOptions) (s: LawSample) (b: Bijector) =
        let y, forwardLogDet = forward s b s.X
        let _, inverseLogDet = inverse s b y
        Some(Finding.compare "inverse log-det at forward(x) against minus the forward log-det" o.LogDet s.X (-forwardLogDet) inverseLogDet)

    let composition (o: LawOptions) (s: LawSample) (b: Bijector) =
        let second = match o.Partner with Some draw -> draw s.Seed | None -> b
        let layers = [ b; second ]
        let y1, ld1 = forward s b s.X
        let y2, ld2 = forward s second y1
        let y, logDet = Compose.forward s.Context s.X layers
        let x, _ = Compose.inverse s.Context y layers
        Some(
            Finding.worst
                [ Finding.compare "composed output" o.SameValue s.X y2 y
                  Finding.compare "composed log-det against the sum of the layers'" o.SameValue s.X (ld1 + ld2) logDet
                  Finding.compare "composed inverse(forward(x))" o.RoundTrip s.X s.X x ])

    let batchConsistency (o: LawOptions) (s: LawSample) (b: Bijector) =
        let y, logDet = forward s b s.X
        Some(
            Finding.worst
                [ for i in 0 .. s.X.shape[0] - 1 do
                      let yi, ldi = Bijector.forward (contextRow i s.Context) (rowOf i s.X) b
                      yield Finding.compare $"row {i} alone against the batch" o.RoundTrip (rowOf i s.X) (rowOf i y) yi
                      yield Finding.compare $"row {i}'s log-det alone against the batch" o.LogDet (rowOf i s.X) (logDet.narrow(0, i, 1)) ldi ])

    let float32MatchesFloat64 (o: LawOptions) (s: LawSample) (b: Bijector) =
        let single (t: Tensor) = t.cast Dtype.Float32
        let b32 = { b with Params = b.Params.Map single; Buffers = b.Buffers.Map single }
        let ctx32 = { s.Context with Condition = s.Context.Condition |> Option.map single }
        let y, logDet = forward s b s.X
        let y32, logDet32 = Bijector.forward ctx32 (single s.X) b32
        Some(
            Finding.worst
                [ Finding.compare "float32 output against float64" o.Float32 s.X y (y32.cast Dtype.Float64)
                  Finding.compare "float32 log-det against float64" o.Float32 s.X logDet (logDet32.cast Dtype.Float64) ])

    let finiteAtExtremes (o: LawOptions) (s: LawSample) (b: Bijector) =
        let signs = (Generator(uint64 s.Seed)).rademacher([| s.X.shape[0]; dimOf b |], Dtype.Float64)
        let far = signs * 30.0
        let y, logDet = forward s b far
        let edge =
            match o.Domain with
            | Domain.Real -> signs * 1e3
            | Domain.Positive -> (signs * 12.0).exp()
            | Domain.Interval(low, high) -> Tensor.where(signs.gt(signs.zerosLike()), signs.fullLike(high - 1e-6 * (high - low)), signs.fullLike(low + 1e-6 * (high - low)))
        let x, inverseLogDet = inverse s b edge
        Some(
            Finding.worst
                [ Finding.finite "forward at ±30" far y
                  Finding.finite "forward log-det at ±30" far logDet
                  Finding.finite "inverse near the domain's edge" edge x
                  Finding.finite "inverse log-det near the domain's edge" edge inverseLogDet ])

    let domainErrors (o: LawOptions) (s: LawSample) (b: Bijector) =
        let outside =
            match o.Domain with
            | Domain.Real -> None
            | Domain.Positive -> Some(-s.Y)
            | Domain.Interval(low, high) -> Some(s.Y + (high - low) * 2.0)
        outside
        |> Option.map (fun outside ->
            try
                inverse s b outside |> ignore
                Finding.failure (Finding.row 0 outside) "the inverse accepted inputs outside the domain without an error"
            with
            | :? ArgumentException as e when e.Message.Contains b.Name -> Finding.none
            | :? ArgumentException as e -> Finding.failure (Finding.row 0 outside) $"the error does not name the bijector '{b.Name}': {e.Message}")

    let parameterGradients (_: LawOptions) (s: LawSample) (b: Bijector) =
        if b.Params.Count = 0 then None
        else
            let flow = Flow.create (Distribution.standardNormal [| dimOf b |] Dtype.Float64) [ b ]
            let p = Flow.parameters flow
            let nll (values: Tensor[]) = -((Flow.logProbWith (p.WithValues values) s.Context s.Y flow).mean())
            let grads = Ad.gradN nll p.Values
            let noise = Generator(uint64 s.Seed + 7UL)
            let input = Finding.row 0 s.Y
            Some(
                Finding.worst
                    [ for i, (n: string), (g: Tensor) in Array.zip3 [| 0 .. p.Count - 1 |] p.Names grads do
                          let nonFinite = Finding.finite $"gradient of {n}" s.Y (g.reshape [| 1; -1 |])
                          // independent of autodiff: does nudging this tensor change the density at all?
                          // (masked entries, e.g. the strict triangles of a 1 x 1 matrix, do not)
                          let nudged = p.Values |> Array.mapi (fun j v -> if i = j then v + noise.normal(v.shape, 0.0, 1e-3, Dtype.Float64) else v)
                          let moves = abs ((nll nudged).toScalar() - (nll p.Values).toScalar()) > 1e-12
                          let size = g.abs().sum().toScalar()
                          yield { nonFinite with Input = input }
                          if moves && size = 0.0 then yield Finding.failure input $"{n} changes the density but its gradient is zero"
                          // a tensor that cannot matter may still collect rounding (1 x 1 Householder: −1 for any v)
                          if not moves && size > 1e-6 then yield { Finding.failure input $"{n} does not change the density but its gradient sums to {size}" with Error = size } ])

    let sampleAndLogProb (o: LawOptions) (s: LawSample) (b: Bijector) =
        let flow = Flow.create (Distribution.standardNormal [| dimOf b |] Dtype.Float64) [ b ]
        let n = s.X.shape[0]
        let x, logQ = Flow.sampleAndLogProb s.Context (Generator(uint64 s.Seed)) n flow
        let x' = Flow.sample s.Context (Generator(uint64 s.Seed)) n flow
        Some(
            Finding.worst
                [ Finding.compare "samples drawn with their log-densities against samples alone" o.SameValue x x' x
                  Finding.compare "log q in one pass against scoring the samples" o.LogDet x logQ (Flow.logProb s.Context x flow) ])

    let normalisation (o: LawOptions) (_: LawSample) (b: Bijector) =
        if dimOf b <> 2 || o.Domain <> Domain.Real || o.ContextDim <> 0 then None
        else
            let flow = Flow.create (Distribution.standardNormal [| 2 |] Dtype.Float64) [ b ]
            // no input row to point at: the whole plane is the input
            let logZ = Targets.logNormaliser 9.0 360 (fun z -> Flow.logProb Context.none z flow)
            let error = if Double.IsNaN logZ then infinity else abs logZ
            Some
                { Error = error
                  Excess = (if error = 0.0 then 0.0 else error / o.Normalisation)
                  Input = [||]
                  Detail = $"log ∫ q over [-9, 9]² (360² nodes) is {logZ:G6}; allowed ±{o.Normalisation}" }

    let saveLoad (o: LawOptions) (s: LawSample) (b: Bijector) =
        match Catalogue.tryFindCodec b.Name with
        | None -> Some(Finding.failure [||] $"no codec is registered under the name '{b.Name}', so a saved model could not rebuild it (Catalogue.register)")
        | Some _ ->
            // a loader knows only the name and the settings, and puts the saved tensors back by name
            let built = Catalogue.rebuild Dtype.Float64 b.Name b.Settings
            let layout (p: Params) = Array.zip p.Names (p.Values |> Array.map (fun t -> Shape.show t.shape)) |> Array.sort
            if layout built.Params <> layout b.Params || layout built.Buffers <> layout b.Buffers then
                Some(Finding.failure [||] $"""the rebuilt bijector's tensors {String.Join(", ", layout built.Params)} differ from the saved {String.Join(", ", layout b.Params)}""")
            else
                let rebuilt = { built with Params = b.Params; Buffers = b.Buffers }
                let y, logDet = forward s b s.X
                let y', logDet' = forward s rebuilt s.X
                Some(
                    Finding.worst
                        [ Finding.compare "rebuilt output" o.SameValue s.X y y'
                          Finding.compare "rebuilt log-det" o.SameValue s.X logDet logDet' ])
