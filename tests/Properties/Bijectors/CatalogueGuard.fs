/// The catalogue is complete: every bijector module registers an entry, names are unique.
module Flows.Properties.Bijectors.CatalogueGuard

open System.Reflection
open Xunit
open Flows

[<Fact>]
let ``entry names are unique`` () =
    let names = Catalogue.all |> List.map (fun e -> e.Name)
    Assert.Equal<string list>(List.distinct names, names)

[<Fact>]
let ``every bijector module with a create function registers an entry`` () =
    let modules =
        typeof<Entry>.Assembly.GetTypes()
        |> Array.filter (fun t -> t.IsAbstract && t.IsSealed && t.Namespace = "Flows.Bijectors" && not (t.Name.Contains "@"))
    Assert.NotEmpty modules
    for m in modules do
        let hasCreate = m.GetMethods(BindingFlags.Public ||| BindingFlags.Static) |> Array.exists (fun f -> f.Name = "create")
        let registers = m.GetProperties(BindingFlags.Public ||| BindingFlags.Static) |> Array.exists (fun p -> p.IsDefined(typeof<CatalogueEntryAttribute>))
        if hasCreate && not registers then failwith $"module {m.FullName} has a create function but no [<CatalogueEntry>]"

[<Fact>]
let ``find names the entries there are when a name is unknown`` () =
    let error = Assert.Throws<System.ArgumentException>(fun () -> Catalogue.find "no-such-flow" |> ignore)
    Assert.Contains("planar", error.Message)
