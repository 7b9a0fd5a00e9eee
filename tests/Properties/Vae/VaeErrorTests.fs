/// Bad input to the VAE and its amortised layers: an ArgumentException naming the argument and what
/// was expected.
module Flows.Properties.Vae.VaeErrorTests

open System
open Xunit
open Flows
open Flows.Bijectors
open Flows.Nn
open Flows.Tensors
open Flows.Vae

let private spec = { Event = [| 4 |]; Latent = 2; Hidden = [ 3 ]; Activation = Activation.Tanh; Architecture = Architecture.Mlp; Posterior = Posterior.Planar 2; Likelihood = Likelihood.Bernoulli }
let private model = Vae.create (Generator 1UL) Dtype.Float64 spec
let private x = Tensor.zeros([| 3; 4 |], Dtype.Float64)

let private rejects (argument: string) (expected: string) (f: unit -> obj) =
    let error = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)
    Assert.Equal(argument, error.ParamName)
    Assert.Contains(expected, error.Message)

[<Fact>]
let ``a latent size below one is rejected`` () =
    rejects "Latent" "at least 1, got 0" (fun () -> box (Vae.create (Generator 1UL) Dtype.Float64 { spec with Latent = 0 }))
    rejects "latent" "at least 1, got -1" (fun () -> box (Posterior.parse -1 "planar"))

[<Fact>]
let ``an IWAE with fewer than one sample is rejected`` () =
    rejects "k" "at least 1, got 0" (fun () -> box (Vae.iwae (Generator 1UL) 0 x model))

[<Fact>]
let ``data of the wrong shape is rejected with both shapes`` () =
    let wrong = Tensor.zeros([| 3; 5 |], Dtype.Float64)
    rejects "x" "[batch; 4]" (fun () -> box (Vae.elbo (Generator 1UL) wrong model))
    rejects "x" "[3, 5]" (fun () -> box (Vae.iwae (Generator 1UL) 2 wrong model))
    rejects "data" "[batch; 4]" (fun () -> box (Vae.fit VaeFitOptions.defaults wrong model))
    rejects "z" "[batch; 2]" (fun () -> box (Vae.decode wrong model))
    rejects "x" "expected float64 data" (fun () -> box (Vae.elbo (Generator 1UL) (x.cast Dtype.Float32) model))

[<Fact>]
let ``an amortised layer without a context of the right width is rejected`` () =
    let b = AmortisedPlanar.create (Generator 1UL) Dtype.Float64 4 3
    rejects "context" "needs a context of 3 features" (fun () -> box (Bijector.forward Context.none x b))
    rejects "context" "expected a context [3; 3]" (fun () -> box (Bijector.forward (Context.ofCondition (Tensor.zeros([| 3; 2 |], Dtype.Float64))) x b))

[<Fact>]
let ``O-SNF with more columns than dimensions and unknown posteriors are rejected`` () =
    rejects "columns" "must be in [1, 3]" (fun () -> box (AmortisedSylvester.create (AmortisedSylvester.Kind.Orthogonal 4) (Generator 1UL) Dtype.Float64 3 2))
    rejects "name" "unknown posterior 'glow'" (fun () -> box (Posterior.parse 2 "glow"))
    rejects "layers" "at least 1, got 0" (fun () -> box (Posterior.parse 2 "planar-0"))
