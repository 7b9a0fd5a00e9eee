/// examples/CustomTransformer's verdicts, as it prints them: the law suite passes the correct
/// transformer in both generic layers and names the laws each wrong one breaks.
module Flows.Properties.Bijectors.CustomTransformerExampleTests

open Xunit
open CustomTransformer.Transformers

[<Fact>]
let ``the correct transformer passes in both layers and each wrong one fails its own laws`` () =
    Assert.Equal<string list>([ "custom.softplus-scale-coupling passed"; "custom.softplus-scale-maf passed" ], verdicts softplusScale)
    Assert.Equal<string list>(
        [ "custom.log-det-off-coupling failed: forward-log-det, inverse-log-det"
          "custom.log-det-off-maf failed: forward-log-det, inverse-log-det" ],
        verdicts offByConstant)
    for line in verdicts notInverse do
        Assert.StartsWith("custom.not-inverse-", line)
        Assert.Contains("failed: inverse-undoes-forward, forward-undoes-inverse", line)
