/// Family laws of the neural autoregressive flows (NAF's deep sigmoidal transformer, B-NAF; SOS and
/// UMNN share the bisection laws): each feature's map is strictly increasing, the DSF matches its
/// formula, the bisection inverse brackets the root within its stated tolerance, and the inverse of
/// the inverse is the forward. Log-dets against the autodiff Jacobian are the law suite's.
module Flows.Properties.Bijectors.NeuralAutoregressiveTests

open Xunit
open Flows
open Flows.Bijectors
open Flows.Transformers
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// The neural autoregressive entries and their stated tolerances.
let names : seq<obj[]> = [ "naf"; "conditional-naf"; "bnaf"; "conditional-bnaf"; "sos"; "conditional-sos"; "umnn"; "conditional-umnn" ] |> Seq.map (fun n -> [| box n |])

let private tolerance (entry: Flows.Fixtures.Fixture) =
    match entry.InverseKind with
    | InverseKind.Iterative t -> t
    | InverseKind.Exact -> failwith $"{entry.Name} should state an iterative tolerance"

/// Random DSF parameters for one feature: K units, raw values N(0, 1.5²).
let private randomDsf (g: Generator) (units: int) =
    let raw = (Draw.normal g [| 1; 1; 3 * units |]) * 1.5
    let offsets = Tensor.ofArray(Array.init units (fun j -> float j - float (units - 1) / 2.0), [| units |])
    raw, offsets, Dsf.ofRaw units offsets raw

/// The DSF one number at a time, straight from the paper: logit(Σ w_j σ(a_j x + b_j)).
let private scalarDsf (raw: float[]) (offsets: float[]) (x: float) =
    let k = offsets.Length
    let softplus (v: float) = max v 0.0 + log (1.0 + exp (-(abs v)))
    let sigmoid (v: float) = 1.0 / (1.0 + exp -v)
    let a = Array.init k (fun j -> softplus (raw[j] + log (System.Math.E - 1.0)))
    let e = Array.init k (fun j -> exp raw[k + j])
    let w = e |> Array.map (fun v -> v / Array.sum e)
    let b = Array.init k (fun j -> raw[2 * k + j] + offsets[j])
    let s = Array.init k (fun j -> w[j] * sigmoid (a[j] * x + b[j])) |> Array.sum
    let ds = Array.init k (fun j -> let v = sigmoid (a[j] * x + b[j]) in w[j] * a[j] * v * (1.0 - v)) |> Array.sum
    log (s / (1.0 - s)), log (ds / (s * (1.0 - s)))

[<Fact>]
let ``the DSF transformer is strictly increasing in x along a grid, with finite log-derivatives, for random parameters`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let units = 1 + abs seed % 8
        let _, _, dsf = randomDsf g units
        let grid = Tensor.ofArray(Array.init 801 (fun i -> -40.0 + 0.1 * float i), [| 801; 1 |])
        let z, logDerivative = Dsf.apply dsf grid
        let values = z.toArray64()
        for i in 1 .. values.Length - 1 do
            if not (values[i] > values[i - 1]) then failwith $"seed {seed}: DSF({-40.0 + 0.1 * float i}) = {values[i]} is not above DSF at the previous point {values[i - 1]}"
        if (logDerivative.isnan() + logDerivative.isinf()).sum().toScalar() > 0.0 then failwith $"seed {seed}: non-finite log-derivative {logDerivative}")

[<Fact>]
let ``the DSF transformer and its log-derivative match the paper's formula computed one number at a time`` () =
    Gens.check 30 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let units = 1 + abs seed % 8
        let raw, offsets, dsf = randomDsf g units
        let xs = Array.init 61 (fun i -> -3.0 + 0.1 * float i)
        let z, logDerivative = Dsf.apply dsf (Tensor.ofArray(xs, [| xs.Length; 1 |]))
        let expected = xs |> Array.map (scalarDsf (raw.toArray64()) (offsets.toArray64()))
        Close.arrays "DSF" { Abs = 1e-9; Rel = 1e-9 } (Array.map fst expected) (z.toArray64())
        Close.arrays "DSF log-derivative" { Abs = 1e-9; Rel = 1e-9 } (Array.map snd expected) (logDerivative.toArray64()))

[<Fact>]
let ``each B-NAF feature is strictly increasing in its own input along a grid, the other inputs fixed`` () =
    let entry = Fixtures.find "bnaf"
    Gens.check 10 Gens.seed (fun seed ->
        let g = Draw.generator seed
        let dim = 1 + abs seed % 3
        let b = entry.Random g Dtype.Float64 dim
        let point = (Draw.normal g [| 1; dim |]).toArray64()
        let steps = 401
        for d in 0 .. dim - 1 do
            let rows = Array.init steps (fun i -> point |> Array.mapi (fun j v -> if j = d then -20.0 + 0.1 * float i else v)) |> Array.concat
            let z, _ = Bijector.inverse Context.none (Tensor.ofArray(rows, [| steps; dim |])) b
            let zd = z.toArray64() |> Array.chunkBySize dim |> Array.map (fun r -> r[d])
            for i in 1 .. steps - 1 do
                if not (zd[i] > zd[i - 1]) then failwith $"seed {seed}: feature {d} falls from {zd[i - 1]} to {zd[i]} at x_d = {-20.0 + 0.1 * float i}")

[<Theory; MemberData(nameof names)>]
let ``the bisection inverse brackets each feature's root within its stated tolerance`` (name: string) =
    let entry = Fixtures.find name
    let tol = tolerance entry
    LawCase.check 8 entry (fun case ->
        let x, _ = Bijector.forward case.Context case.X case.Bijector
        let z = case.X.toArray64()
        let n, dim = case.X.shape[0], case.Dim
        // feature d reads only x_≤d (in its order): moving x_d alone by ±tol must straddle z_d
        for d in 0 .. dim - 1 do
            let nudge (by: float) =
                let e = Tensor.ofArray(Array.init (n * dim) (fun k -> if k % dim = d then by else 0.0), [| n; dim |])
                (fst (Bijector.inverse case.Context (x + e) case.Bijector)).toArray64()
            let below, above = nudge -tol, nudge tol
            for r in 0 .. n - 1 do
                let k = r * dim + d
                if not (below[k] <= z[k] && z[k] <= above[k]) then
                    failwith $"{name}: row {r} feature {d}: z = {z[k]} not within [{below[k]}, {above[k]}] of x ± {tol}")

[<Theory; MemberData(nameof names)>]
let ``the inverse of the inverse is the forward`` (name: string) =
    let entry = Fixtures.find name
    LawCase.check 6 entry (fun case ->
        let flipped = Bijector.invert case.Bijector
        let x, logDet = Bijector.forward case.Context case.X case.Bijector
        let x', logDet' = Bijector.inverse case.Context case.X flipped
        Close.tensors $"{name}: inverse of the inverted map" Tolerance.float64 x x'
        Close.tensors $"{name}: its log-det" Tolerance.float64 logDet logDet'
        let twice = Bijector.invert flipped
        let x'', logDet'' = Bijector.forward case.Context case.X { twice with Settings = case.Bijector.Settings }
        Close.tensors $"{name}: forward of the twice-inverted map" Tolerance.float64 x x''
        Close.tensors $"{name}: its log-det" Tolerance.float64 logDet logDet''
        // the inverted map's forward (the one-pass density map) undoes its bisection inverse
        let z, back = Bijector.forward case.Context x' flipped
        Close.tensors $"{name}: inverted round trip" (LawCase.roundTrip entry) case.X z
        Close.tensors $"{name}: inverted round-trip log-det" (LawCase.logDet entry) (-logDet) back)
