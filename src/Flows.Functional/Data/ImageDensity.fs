namespace Flows.Data

open Flows
open Flows.Tensors
open Flows.Training

/// Density models of grey-level images [n; C; H; W] (Glow, RealNVP): dequantised training batches,
/// bits/dim of a test set scored in chunks, and samples at a temperature, quantised back to levels.
[<RequireQualifiedAccess>]
module ImageDensity =

    let private checkImages (name: string) (images: Tensor) =
        Guard.that name (images.dim = 4 && images.shape[0] > 0)
            $"expected images [n >= 1; channels; height; width], got shape {Shape.show images.shape}"

    /// `n` images drawn uniformly with replacement from `images` (integer grey levels 0 .. levels − 1,
    /// [N; C; H; W] on the host), dequantised with fresh noise from `gen` (Images.dequantise) and
    /// moved to `device`.
    let batch (levels: int) (dtype: Dtype) (device: Device) (images: Tensor) (gen: Generator) (n: int) =
        checkImages (nameof images) images
        Guard.positive (nameof n) n
        let index = gen.integers([| n |], 0, images.shape[0]).reshape [| n; 1; 1; 1 |]
        let picked = images.gather(0, index.expand(Array.append [| n |] images.shape[1..]))
        (Images.dequantise gen levels dtype picked).moveTo device

    /// Training batches from `images`: a fresh `batch` every step.
    let source (levels: int) (dtype: Dtype) (device: Device) (images: Tensor) =
        checkImages (nameof images) images
        DataSource.Sampler(batch levels dtype device images)

    /// Bits per dimension (Objectives.dequantisedBitsPerDim) of dequantised images `x` [n; C; H; W]
    /// under `flow`, scored `chunk` images at a time on the flow's device so that memory stays bounded.
    let bitsPerDim (levels: int) (chunk: int) (flow: Flow) (x: Tensor) =
        checkImages (nameof x) x
        Guard.positive (nameof chunk) chunk
        let n = x.shape[0]
        let logLikelihood =
            seq { 0 .. chunk .. n - 1 }
            |> Seq.sumBy (fun start ->
                let rows = (x.narrow(0, start, min chunk (n - start))).moveTo flow.Base.Device
                (Flow.logProb Context.none rows flow).sum().toScalar())
        Objectives.dequantisedBitsPerDim levels (Shape.numel x.shape[1..]) (-logLikelihood / float n)

    /// `n` samples of a flow on a standard-normal base at `temperature` T (Glow's reduced-temperature
    /// sampling: base draws from N(0, T²I)), as grey levels 0 .. levels − 1 on the host.
    let sample (gen: Generator) (levels: int) (temperature: float) (n: int) (flow: Flow) =
        Guard.positive (nameof n) n
        Guard.positiveFloat (nameof temperature) temperature
        Guard.that (nameof flow) (flow.Base.Name = "standard-normal") $"temperature sampling needs a standard-normal base, got '{flow.Base.Name}'"
        let z = gen.normal(Array.append [| n |] flow.Base.Event, 0.0, temperature, flow.Base.Dtype, flow.Base.Device)
        (fst (Flow.forward Context.none z flow)).moveTo Device.Cpu |> Images.quantise levels
