/// Laws of the autoregressive layers built on monotone integral transformers (SOS, UMNN): each
/// feature of the density map is strictly increasing in its own input. (Their Jacobians' triangular
/// pattern in the declared order is AutoregressiveTests' law, which picks up every MADE entry.)
module Flows.Properties.Bijectors.MonotoneLayerTests

open Xunit
open Flows
open Flows.Tensors
open Flows.Properties.Support

/// The monotone-integral entries.
let names : seq<obj[]> = [ "sos"; "conditional-sos"; "umnn"; "conditional-umnn" ] |> Seq.map (fun n -> [| box n |])

[<Theory; MemberData(nameof names)>]
let ``each feature is strictly increasing in its own input along a grid, the other inputs fixed`` (name: string) =
    LawCase.check 4 (Fixtures.find name) (fun case ->
        let dim = case.Dim
        let point = (Reference.row 0 case.Y).toArray64()
        let ctx = Reference.contextRow 0 case.Context
        let steps = 401
        for d in 0 .. dim - 1 do
            let rows = Array.init steps (fun i -> point |> Array.mapi (fun j v -> if j = d then -10.0 + 0.05 * float i else v)) |> Array.concat
            let repeated = { ctx with Condition = ctx.Condition |> Option.map (fun c -> c.expand [| steps; c.shape[1] |]) }
            let z, _ = Bijector.inverse repeated (Tensor.ofArray(rows, [| steps; dim |])) case.Bijector
            let zd = z.toArray64() |> Array.chunkBySize dim |> Array.map (fun r -> r[d])
            for i in 1 .. steps - 1 do
                if not (zd[i] > zd[i - 1]) then failwith $"{name} seed {case.Seed}: feature {d} falls from {zd[i - 1]} to {zd[i]} at x_d = {-10.0 + 0.05 * float i}")
