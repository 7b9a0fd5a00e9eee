/// Params.Scope remembers each scope's layout; the tensors it picks must still be those of the set it
/// is called on, whatever set with the same names asked first, at any depth.
module Flows.Properties.Flows.ParamsScopeTests

open Xunit
open Flows
open Flows.Tensors

let private names = [ "0.net.weight"; "0.net.bias"; "0.scale"; "1.net.weight"; "10.net.weight"; "1.shift" ]

// A set with the names above whose tensors hold `offset + position`, so each can be told apart.
let private set (offset: float) =
    Params.ofList (names |> List.mapi (fun i n -> n, Tensor.scalar (offset + float i)))

// The (name, value) pairs under `prefix.`, worked out from the names directly.
let private expected (offset: float) (prefix: string) =
    names |> List.indexed |> List.choose (fun (i, n) ->
        if n.StartsWith(prefix + ".") then Some(n.Substring(prefix.Length + 1), offset + float i) else None)

let private pairs (p: Params) = List.zip (List.ofArray p.Names) (p.Values |> Array.map _.toScalar() |> List.ofArray)

[<Fact>]
let ``Scope picks the named tensors of the set it is called on, at every depth and on every call`` () =
    let first, second = set 0.0, set 100.0
    let renamed = second.WithValues(second.Values |> Array.map (fun t -> t + 1000.0))
    for _ in 1 .. 2 do
        for prefix in [ "0"; "1"; "10"; "2" ] do
            Assert.Equal<(string * float) list>(expected 0.0 prefix, pairs (first.Scope prefix))
            Assert.Equal<(string * float) list>(expected 100.0 prefix, pairs (second.Scope prefix))
            Assert.Equal<(string * float) list>(expected 1100.0 prefix, pairs (renamed.Scope prefix))
        // A scope of a scope: "1" then "net" is "1.net.", never "10.net.".
        Assert.Equal<(string * float) list>([ "weight", 103.0 ], pairs ((second.Scope "1").Scope "net"))
        Assert.Equal<(string * float) list>([ "weight", 0.0; "bias", 1.0 ], pairs ((first.Scope "0").Scope "net"))
