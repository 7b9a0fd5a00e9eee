/// Laws of chains that mix discrete and continuous layers (RealNVP coupling, CNF, planar, ...),
/// random instances from the catalogue entries in float64: the chain's inverse undoes its forward
/// and its log-dets are the log|det| of the autodiff Jacobian of the whole chain (MathNet LU).
module Flows.Properties.Bijectors.MixedChainLaws

open Xunit
open FsCheck.FSharp
open Flows
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// A random instance of an entry; a CNF is rebuilt from its settings with its solver tolerance
/// at 1e-10, so the chain's errors are those of float64 rather than of the law suite's 1e-8.
let private instance (seed: int) (dim: int) (name: string) =
    let b = (Fixtures.find name).Random (Generator(uint64 seed)) Dtype.Float64 dim
    if name <> "cnf" then b
    else { (Fixtures.find name).Build Dtype.Float64 (b.Settings.Add("tolerance", Setting.Float 1e-10)) with Params = b.Params; Buffers = b.Buffers }

let private chains =
    [ [ "affine-coupling"; "cnf"; "planar" ]
      [ "planar"; "cnf"; "affine-coupling-exp"; "cnf" ]
      [ "cnf"; "residual"; "affine-coupling" ] ]

let chainNames : seq<obj[]> = chains |> Seq.map (fun c -> [| box (String.concat " → " c) |])

/// Runs `law` on `count` random chains (dimension 2 or 3, batch 1–6) of the named layers.
let private check (count: int) (chain: string) (law: Bijector list -> Tensor -> Tensor -> unit) =
    let names = chain.Split " → " |> List.ofArray
    Gens.check count (Gen.choose (0, System.Int32.MaxValue)) (fun seed ->
        let gen = Generator(uint64 seed)
        let dim = 2 + seed % 2
        let batch = 1 + (seed / 2) % 6
        let layers = names |> List.mapi (fun i name -> instance (seed + 31 * i) dim name)
        law layers (gen.normal([| batch; dim |], 0.0, 1.5, Dtype.Float64)) (gen.normal([| batch; dim |], 0.0, 1.5, Dtype.Float64)))

// CNF at 1e-10 and the iterative inverses (planar, residual) at 1e-10: a few 1e-9 after a chain
let private roundTrip = { Abs = 1e-8; Rel = 1e-8 }
let private logDet = { Abs = 1e-7; Rel = 1e-7 }

[<Theory; MemberData(nameof chainNames)>]
let ``a mixed chain's inverse undoes its forward and back`` (chain: string) =
    check 3 chain (fun layers x y ->
        let x', _ = Compose.inverse Context.none (fst (Compose.forward Context.none x layers)) layers
        Close.tensors $"{chain}: inverse(forward(x))" roundTrip x x'
        let y', _ = Compose.forward Context.none (fst (Compose.inverse Context.none y layers)) layers
        Close.tensors $"{chain}: forward(inverse(y))" roundTrip y y')

[<Theory; MemberData(nameof chainNames)>]
let ``a mixed chain's log-dets are log|det| of the autodiff Jacobian of the whole chain`` (chain: string) =
    check 3 chain (fun layers x y ->
        let _, forwardLogDet = Compose.forward Context.none x layers
        let expected = Reference.logAbsDetJacobian (fun x -> fst (Compose.forward Context.none x layers)) x
        Close.arrays $"{chain}: forward log-det" logDet expected (forwardLogDet.toArray64())
        let _, inverseLogDet = Compose.inverse Context.none y layers
        let expected = Reference.logAbsDetJacobian (fun y -> fst (Compose.inverse Context.none y layers)) y
        Close.arrays $"{chain}: inverse log-det" logDet expected (inverseLogDet.toArray64()))
