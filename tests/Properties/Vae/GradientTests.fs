/// The VAE's training loss differentiates correctly through every part (encoder, heads, each
/// posterior flow, decoder; dense and convolutional): the autodiff gradient along a random direction
/// against a central difference of the loss with the same noise, and every parameter tensor gets a
/// finite, non-zero gradient. A convolutional VAE trained briefly on bars-and-blobs images raises its ELBO.
module Flows.Properties.Vae.GradientTests

open Xunit
open Flows
open Flows.Data
open Flows.Datasets
open Flows.Nn
open Flows.Tensors
open Flows.Vae
open Flows.Laws
open Flows.Properties.Support

let private imageSpec (posterior: string) (architecture: Architecture) (likelihood: Likelihood) =
    { Event = [| 1; 8; 8 |]; Latent = 3; Hidden = [ 10 ]; Activation = Activation.Tanh; Architecture = architecture
      Posterior = Posterior.parse 3 posterior; Likelihood = likelihood }

let cases : seq<obj[]> =
    [ for name in [ "gaussian"; "planar-2"; "radial-2"; "sylvester-o-2"; "sylvester-h-2"; "sylvester-t-2"; "iaf-2" ] -> [| box name; box "mlp" |]
      yield [| box "planar-2"; box "conv" |]
      yield [| box "iaf-1"; box "conv-gaussian" |] ]

[<Theory; MemberData(nameof cases)>]
let ``the loss gradient matches a central difference and reaches every parameter`` (posterior: string, network: string) =
    let architecture, likelihood =
        match network with
        | "mlp" -> Architecture.Mlp, Likelihood.Bernoulli
        | "conv" -> Architecture.Conv 2, Likelihood.Bernoulli
        | _ -> Architecture.Conv 2, Likelihood.Gaussian
    let model = Vae.create (Generator 41UL) Dtype.Float64 (imageSpec posterior architecture likelihood)
    // flows away from their near-identity start, so their parameters have something to move
    let model = { model with Flow = model.Flow |> List.map (Entry.perturb (Generator 42UL) 0.2) }
    let x = Images.binarise (Generator 43UL) 2 (ToyImages.barsAndBlobs (Generator 44UL) 4 2 8 8) |> fun t -> t.cast Dtype.Float64
    let p = Vae.parameters model
    // the same generator seed draws the same ε on every call, so the loss is a fixed function of p
    let loss (values: Tensor[]) = Vae.lossWith (p.WithValues values) (Generator 45UL) 0.7 x model
    let grads = Ad.gradN loss p.Values
    Array.iter2 (fun (name: string) (g: Tensor) ->
        let size = g.abs().sum().toScalar()
        Assert.True(System.Double.IsFinite size && size > 0.0, $"{posterior}/{network}: gradient of {name} is {size}")) p.Names grads
    let direction = p.Values |> Array.mapi (fun i v -> (Generator(uint64 (50 + i))).normal(v.shape, dtype = Dtype.Float64))
    let step = 1e-6
    let at (sign: float) = loss (Array.map2 (fun (v: Tensor) (d: Tensor) -> v + d * (sign * step)) p.Values direction)
    let numeric = ((at 1.0).toScalar() - (at -1.0).toScalar()) / (2.0 * step)
    let analytic = Array.map2 (fun (g: Tensor) (d: Tensor) -> (g * d).sum().toScalar()) grads direction |> Array.sum
    Close.scalar $"{posterior}/{network}: directional derivative" { Abs = 1e-5; Rel = 1e-6 } numeric analytic

[<Fact>]
let ``a convolutional VAE trained briefly raises its ELBO and keeps image shapes`` () =
    let images = (ToyImages.barsAndBlobs (Generator 46UL) 256 8 8 8).cast Dtype.Float32
    let model = Vae.create (Generator 47UL) Dtype.Float32 { imageSpec "planar-2" (Architecture.Conv 4) Likelihood.Bernoulli with Hidden = [ 32 ] }
    let test = Images.binarise (Generator 48UL) 8 (images.narrow(0, 0, 64))
    let elbo (m: Flows.Vae.Vae) = (Vae.elbo (Generator 49UL) test m).mean().toScalar()
    let trained, report =
        Vae.fit { VaeFitOptions.defaults with Steps = 150; BatchSize = 32; LearningRate = 3e-3; WarmUp = 30; Prepare = Some(fun g x -> Images.binarise g 8 x) } images model
    Assert.False(report.Diverged, report.Message)
    // 64 binary pixels: the untrained decoder scores about 64·log 2 ≈ 44 nats; learning the bars and blobs must cut that clearly
    let before, after = elbo model, elbo trained
    Assert.True(after > before + 5.0, $"ELBO {before:F2} → {after:F2}")
    Close.shape "reconstructions" [| 64; 1; 8; 8 |] (Vae.reconstruct (Generator 50UL) test trained)
    Close.shape "samples" [| 5; 1; 8; 8 |] (Vae.sample (Generator 51UL) 5 trained)
