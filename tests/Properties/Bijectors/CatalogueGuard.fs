/// The catalogue is complete: every bijector module registers an entry, names are unique.
module Flows.Properties.Bijectors.CatalogueGuard

open System.Reflection
open Xunit
open Flows
open Flows.Fixtures
open Flows.Tensors

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
let ``every library entry is a layer a model file names, not a test variant`` () =
    // variants (other masks, conditional forms) live in the tests; a loader finds layers by the
    // name of the bijector, so each library entry must build a bijector of its own name
    for f in Library.all do
        let built = f.Create (Generator 1UL) Dtype.Float64 (List.head f.Dims)
        Assert.Equal(f.Name, built.Name)
    Assert.DoesNotContain(Catalogue.all, fun e -> e.Name = "affine-coupling-exp" || e.Name.StartsWith "conditional-")

[<Fact>]
let ``every library entry has a fixture and every fixture an entry`` () =
    Assert.Equal<string list>([], Library.missing)
    Assert.Equal<string list>([], Library.stale)
    Assert.Equal(Catalogue.all.Length, Library.all.Length)

[<Fact>]
let ``the law suite covers every library entry and every test variant`` () =
    let names = Fixtures.all |> List.map (fun e -> e.Name)
    Assert.Equal<string list>(List.distinct names, names)
    Assert.Equal(Catalogue.all.Length + Variants.all.Length, names.Length)
    for e in Variants.all do
        Assert.True((Catalogue.tryFind (e.Create (Generator 1UL) Dtype.Float64 (List.head e.Dims)).Name).IsSome, $"{e.Name} draws a bijector no codec rebuilds")

[<Fact>]
let ``find names the entries there are when a name is unknown`` () =
    let error = Assert.Throws<System.ArgumentException>(fun () -> Catalogue.find "no-such-flow" |> ignore)
    Assert.Contains("planar", error.Message)
