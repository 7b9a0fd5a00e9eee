namespace Flows.Vae

open System
open System.Diagnostics
open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Training

/// A VAE's hyperparameters: data rows of shape `Event`, `Latent` dimensions, encoder widths `Hidden`
/// (the last is the width of the features h that the posterior flow reads; the decoder mirrors them,
/// and no widths make h the data itself), dense or convolutional layers, the posterior family and the
/// likelihood.
type VaeSpec =
    { Event: int[]
      Latent: int
      Hidden: int list
      Activation: Activation
      Architecture: Architecture
      Posterior: Posterior
      Likelihood: Likelihood }

/// A variational autoencoder (Kingma & Welling 2014) with a flow posterior: encoder x → h → (μ, log σ),
/// z₀ = μ + σ·ε, z = flow(z₀; h), decoder z → p(x | z), prior N(0, I). Parameters live in the parts;
/// `Vae.parameters` gathers them under "encoder.", "heads.", "flow.i." and "decoder.".
[<NoEquality; NoComparison>]
type Vae =
    { Spec: VaeSpec
      Encoder: Network
      /// "mean.*" and "logScale.*": linear maps h → μ, log σ.
      Heads: Params
      Flow: Bijector list
      Decoder: Network }

/// Creating, training and scoring VAEs. Bounds are per data row, in nats.
[<RequireQualifiedAccess>]
module Vae =

    let private log2Pi = log (2.0 * Math.PI)

    // rows scored at once (data rows × samples) when evaluating, so memory stays bounded
    let private budget = 8192

    /// A VAE with the spec's encoder and decoder, PyTorch-style initial weights.
    let create (gen: Generator) (dtype: Dtype) (spec: VaeSpec) =
        Guard.positive (nameof spec.Latent) spec.Latent
        Guard.that (nameof spec.Event) (spec.Event.Length > 0 && Array.forall (fun d -> d > 0) spec.Event) $"must be positive sizes, got {Shape.show spec.Event}"
        spec.Hidden |> List.iter (Guard.positive (nameof spec.Hidden))
        let dim = Shape.numel spec.Event
        let outputs = Likelihood.outputs spec.Likelihood dim
        let encoder, decoder =
            match spec.Architecture with
            | Architecture.Mlp ->
                Network.mlp gen dtype spec.Activation (dim :: spec.Hidden) true,
                Network.mlp gen dtype spec.Activation (spec.Latent :: List.rev spec.Hidden @ [ outputs ]) false
            | Architecture.Conv channels ->
                Network.convEncoder gen dtype spec.Activation channels spec.Event spec.Hidden,
                Network.convDecoder gen dtype spec.Activation channels spec.Event spec.Latent (List.rev spec.Hidden) (outputs / (spec.Event[1] * spec.Event[2]))
        let features = encoder.Outputs
        { Spec = spec
          Encoder = encoder
          Heads = Params.concat [ (Mlp.linear gen dtype features spec.Latent false).Prefixed "mean"; (Mlp.linear gen dtype features spec.Latent false).Prefixed "logScale" ]
          Flow = Posterior.layers gen dtype spec.Latent features spec.Posterior
          Decoder = decoder }

    /// Every learnable tensor: "encoder.*", "heads.*", "flow.i.*", "decoder.*".
    let parameters (vae: Vae) =
        Params.concat
            [ yield vae.Encoder.Params.Prefixed "encoder"
              yield vae.Heads.Prefixed "heads"
              for i, b in List.indexed vae.Flow -> b.Params.Prefixed $"flow.{i}"
              yield vae.Decoder.Params.Prefixed "decoder" ]

    /// The VAE with its learnable tensors replaced (same names, as from `parameters`).
    let withParameters (p: Params) (vae: Vae) =
        { vae with
            Encoder = { vae.Encoder with Params = p.Scope "encoder" }
            Heads = p.Scope "heads"
            Flow = vae.Flow |> List.mapi (fun i b -> { b with Params = p.Scope $"flow.{i}" })
            Decoder = { vae.Decoder with Params = p.Scope "decoder" } }

    let private rows (x: Tensor) = x.reshape [| x.shape[0]; -1 |]

    // data rows of the spec's event shape, in the parameters' dtype
    let private checkData (name: string) (x: Tensor) (vae: Vae) =
        Guard.event name vae.Spec.Event x
        let dtype = vae.Heads["mean.weight"].dtype
        Guard.that name (x.dtype = dtype) $"expected {dtype} data like the VAE's parameters, got {x.dtype}"

    // k posterior samples per row of x [n; D] with parameters p: log p(x | z) and log p(z) − log q(z | x), both [n; k]
    let private logTerms (p: Params) (vae: Vae) (training: bool) (gen: Generator) (k: int) (x: Tensor) =
        let n, latent = x.shape[0], vae.Spec.Latent
        let h = vae.Encoder.Apply (p.Scope "encoder") x
        let heads = p.Scope "heads"
        let repeat (t: Tensor) = if k = 1 then t else t.unsqueeze(1).expand([| n; k; t.shape[1] |]).reshape [| n * k; t.shape[1] |]
        let mean = Tensor.linear(h, heads["mean.weight"], heads["mean.bias"])
        let logScale = repeat (Tensor.linear(h, heads["logScale.weight"], heads["logScale.bias"]))
        let eps = gen.normal([| n * k; latent |], dtype = x.dtype, device = x.device)
        let z0 = repeat mean + eps * logScale.exp()
        let logQ0 = (eps.square() * -0.5 - logScale).sum(1) - 0.5 * float latent * log2Pi
        let layers = vae.Flow |> List.mapi (fun i b -> { b with Params = p.Scope $"flow.{i}" })
        let z, logDet = Compose.forward { Condition = Some(repeat h); Training = training } z0 layers
        let logPrior = z.square().sum(1) * -0.5 - 0.5 * float latent * log2Pi
        let logLikelihood = Likelihood.logProb vae.Spec.Likelihood (vae.Decoder.Apply (p.Scope "decoder") z) (repeat x)
        logLikelihood.reshape [| n; k |], (logPrior - logQ0 + logDet).reshape [| n; k |]

    /// The training loss with parameters `p`: −mean over the rows of x of the one-sample
    /// E_q[log p(x | z) + β·(log p(z) − log q(z | x))] (β = 1: the negative ELBO).
    let lossWith (p: Params) (gen: Generator) (beta: float) (x: Tensor) (vae: Vae) =
        let logLikelihood, kl = logTerms p vae true gen 1 (rows x)
        -((logLikelihood + kl * beta).mean())

    // f on chunks of the rows of x [n; D], each f chunk giving [chunk], concatenated
    let private chunked (rowsPerChunk: int) (f: Tensor -> Tensor) (x: Tensor) =
        let n = x.shape[0]
        let size = max 1 rowsPerChunk
        Tensor.cat([| for start in 0 .. size .. n - 1 -> f (x.narrow(0, start, min size (n - start))) |], 0)

    /// A one-sample estimate per row of the ELBO log p(x | z) + log p(z) − log q(z | x), z ~ q(z | x).
    let elbo (gen: Generator) (x: Tensor) (vae: Vae) =
        checkData (nameof x) x vae
        let p = parameters vae
        chunked budget (fun chunk -> let ll, kl = logTerms p vae false gen 1 chunk in (ll + kl).squeeze 1) (rows x)

    /// The importance-weighted bound per row (Burda et al. 2016), log (1/k)·Σᵢ p(x, zᵢ)/q(zᵢ | x) with
    /// k posterior samples: the ELBO at k = 1, rising to log p(x) as k grows (the NLL estimate at
    /// k = 1000). Samples are scored in chunks, with a running log-sum-exp, so memory stays bounded.
    let iwae (gen: Generator) (k: int) (x: Tensor) (vae: Vae) =
        Guard.positive (nameof k) k
        checkData (nameof x) x vae
        let p = parameters vae
        let samples = min k budget
        let bound (chunk: Tensor) =
            let parts =
                [| for start in 0 .. samples .. k - 1 ->
                       let ll, kl = logTerms p vae false gen (min samples (k - start)) chunk
                       (ll + kl).logsumexp(1) |]
            Tensor.stack(parts, 1).logsumexp(1) - log (float k)
        chunked (budget / samples) bound (rows x)

    /// The posterior's mean and log σ before the flow, and the features h its flow reads, for rows x.
    let encode (x: Tensor) (vae: Vae) =
        checkData (nameof x) x vae
        let h = vae.Encoder.Apply vae.Encoder.Params (rows x)
        Tensor.linear(h, vae.Heads["mean.weight"], vae.Heads["mean.bias"]), Tensor.linear(h, vae.Heads["logScale.weight"], vae.Heads["logScale.bias"]), h

    /// E[x | z] for latent rows z [n; Latent], shaped [n; ...Event]: Bernoulli probabilities or means.
    let decode (z: Tensor) (vae: Vae) =
        Guard.rows (nameof z) vae.Spec.Latent z
        let decoded = vae.Decoder.Apply vae.Decoder.Params z
        (Likelihood.mean vae.Spec.Likelihood decoded).reshape(Array.append [| z.shape[0] |] vae.Spec.Event)

    /// Draws z ~ q(z | x) (through the flow) for each row of x: [n; Latent].
    let posteriorSample (gen: Generator) (x: Tensor) (vae: Vae) =
        let mean, logScale, h = encode x vae
        let z0 = mean + gen.normal(mean.shape, dtype = mean.dtype, device = mean.device) * logScale.exp()
        fst (Compose.forward (Context.ofCondition h) z0 vae.Flow)

    /// Reconstructions E[x | z], z ~ q(z | x), shaped like x.
    let reconstruct (gen: Generator) (x: Tensor) (vae: Vae) = decode (posteriorSample gen x vae) vae

    /// n samples E[x | z], z ~ N(0, I), shaped [n; ...Event].
    let sample (gen: Generator) (n: int) (vae: Vae) =
        Guard.positive (nameof n) n
        let like = vae.Heads["mean.weight"]
        decode (gen.normal([| n; vae.Spec.Latent |], dtype = like.dtype, device = like.device)) vae

    /// Fits the VAE to data [N; ...Event] by Adam on the one-sample negative ELBO of mini-batches (each
    /// epoch reshuffled), with KL warm-up. Steps with a non-finite loss or gradient are skipped; after
    /// `MaxBadSteps` in a row it stops and the report says so, keeping the last finite parameters.
    let fit (options: VaeFitOptions) (data: Tensor) (vae: Vae) =
        Guard.positive (nameof options.Steps) options.Steps
        Guard.positive (nameof options.BatchSize) options.BatchSize
        Guard.positiveFloat (nameof options.LearningRate) options.LearningRate
        Guard.that (nameof options.WarmUp) (options.WarmUp >= 0) $"must be at least 0, got {options.WarmUp}"
        checkData (nameof data) data vae
        Guard.finite (nameof data) data
        let n = data.shape[0]
        let size = min options.BatchSize n
        let clock = Stopwatch.StartNew()
        let gen = Generator options.Seed
        // the same epoch-shuffled batches as Train.fit, then the mini-batch preparation
        let drawBatch = Batches.ofSource options.Seed gen size (DataSource.Dataset data)
        let nextBatch () =
            let batch = drawBatch ()
            match options.Prepare with
            | Some prepare -> prepare gen batch
            | None -> batch
        let losses = Collections.Generic.List<float>()
        let mutable parameters = parameters vae
        let mutable state = Optimiser.init parameters
        // the parameters that last gave a finite loss: where a non-finite step rolls back to
        let mutable lastFinite = parameters
        let mutable bad, skipped, t = 0, 0, 0
        let stopRequested () = options.ShouldStop |> Option.exists (fun stop -> stop ())
        while t < options.Steps && bad < options.MaxBadSteps && not (stopRequested ()) do
            let batch = nextBatch ()
            let beta = if options.WarmUp = 0 then 1.0 else min 1.0 (float t / float options.WarmUp)
            let value, grads = Ad.fgradNReusing (fun values -> lossWith (parameters.WithValues values) gen beta batch vae) parameters.Values
            let loss = value.toScalar()
            let grads, norm = Optimiser.clipIfAsked options.ClipNorm grads
            losses.Add loss
            if Double.IsFinite loss && Double.IsFinite norm then
                bad <- 0
                lastFinite <- parameters
                let p, s = Optimiser.step options.Optimiser options.LearningRate state parameters grads
                parameters <- p
                state <- s
            else
                // undo the update that led here, with fresh moments (the old ones carry it)
                bad <- bad + 1
                skipped <- skipped + 1
                parameters <- lastFinite
                state <- Optimiser.init parameters
            match options.Progress with
            | Some report when (t + 1) % options.ReportEvery = 0 || t + 1 = options.Steps ->
                report { Step = t + 1; Loss = loss; Beta = beta; Seconds = clock.Elapsed.TotalSeconds }
            | _ -> ()
            t <- t + 1
        let diverged = bad >= options.MaxBadSteps
        let cancelled = not diverged && t < options.Steps
        let message =
            if diverged then $"diverged at step {t}: {bad} consecutive steps had a non-finite loss or gradient; kept the last finite parameters"
            elif cancelled then $"cancelled after {t} of {options.Steps} steps; kept the parameters trained so far"
            else $"ran {t} steps ({skipped} skipped as non-finite)"
        withParameters parameters vae,
        { StepsRun = t; Losses = losses.ToArray(); SkippedSteps = skipped; Diverged = diverged; Cancelled = cancelled
          Message = message; Seconds = clock.Elapsed.TotalSeconds }
