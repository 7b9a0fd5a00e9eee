namespace Flows.Distributions

open System
open Flows
open Flows.Tensors

/// A probability distribution over rows [batch; ...Event]: log-density and seeded sampling, both
/// reading learnable tensors from `Params` (passed in, so training never mutates). Samples are drawn
/// on `Device`, where the parameters live too (`Distribution.moveTo`).
[<NoEquality; NoComparison>]
type Distribution =
    { Name: string
      Settings: Settings
      Event: int[]
      Dtype: Dtype
      Device: Device
      Params: Params
      LogProb: Params -> Tensor -> Tensor
      /// Draws n rows on the given device (the distribution's own: call `Distribution.sample`).
      Sample: Device -> Params -> Generator -> int -> Tensor }

/// Base distributions.
[<RequireQualifiedAccess>]
module Distribution =

    let private log2Pi = log (2.0 * Math.PI)

    let private rowsSum (t: Tensor) = t.reshape([| t.shape[0]; -1 |]).sum(1)

    /// Standard normal N(0, I) on `event`.
    let standardNormal (event: int[]) (dtype: Dtype) =
        let d = float (Shape.numel event)
        { Name = "standard-normal"
          Settings = Settings.ofList [ "event", Setting.Ints event ]
          Event = event
          Dtype = dtype
          Device = Device.Cpu
          Params = Params.empty
          LogProb = fun _ z -> rowsSum (z.square()) * -0.5 - 0.5 * d * log2Pi
          Sample = fun device _ gen n -> gen.normal(Array.append [| n |] event, dtype = dtype, device = device) }

    /// Diagonal Gaussian with learnable "loc" and "logScale" (starts as N(0, I)).
    let diagonalNormal (event: int[]) (dtype: Dtype) =
        let d = float (Shape.numel event)
        { Name = "diagonal-normal"
          Settings = Settings.ofList [ "event", Setting.Ints event ]
          Event = event
          Dtype = dtype
          Device = Device.Cpu
          Params = Params.ofList [ "loc", Tensor.zeros(event, dtype); "logScale", Tensor.zeros(event, dtype) ]
          LogProb =
            fun p z ->
                let logScale = p["logScale"]
                let u = (z - p["loc"]) * (-logScale).exp()
                rowsSum (u.square()) * -0.5 - logScale.sum() - 0.5 * d * log2Pi
          Sample =
            fun device p gen n ->
                let eps = gen.normal(Array.append [| n |] event, dtype = dtype, device = device)
                eps * p["logScale"].exp() + p["loc"] }

    /// Uniform on the box [low, high]^event; log-density −inf outside.
    let uniformBox (event: int[]) (low: float) (high: float) (dtype: Dtype) =
        Guard.that (nameof high) (high > low) $"high must exceed low, got [{low}, {high}]"
        let d = float (Shape.numel event)
        let logDensity = -d * log (high - low)
        { Name = "uniform-box"
          Settings = Settings.ofList [ "event", Setting.Ints event; "low", Setting.Float low; "high", Setting.Float high ]
          Event = event
          Dtype = dtype
          Device = Device.Cpu
          Params = Params.empty
          LogProb =
            fun _ z ->
                let outside = (z.lt(z.scalarLike low) + z.gt(z.scalarLike high)) |> rowsSum
                Tensor.where(outside.gt(outside.scalarLike 0.0), outside.fullLike(-infinity), outside.fullLike logDensity)
          Sample = fun device _ gen n -> gen.uniform(Array.append [| n |] event, low, high, dtype, device) }

    /// Mixture of `k` diagonal Gaussians on a `dim`-vector with learnable "logits", "locs" [k; dim]
    /// and "logScales" [k; dim]; locations start at the given points.
    let gaussianMixture (locs: Tensor) (scale: float) =
        Guard.that (nameof locs) (locs.dim = 2) $"locs must be [k; dim], got {Shape.show locs.shape}"
        Guard.positiveFloat (nameof scale) scale
        let k, dim = locs.shape[0], locs.shape[1]
        let dtype = locs.dtype
        { Name = "gaussian-mixture"
          Settings = Settings.ofList [ "components", Setting.Int k; "dim", Setting.Int dim ]
          Event = [| dim |]
          Dtype = dtype
          Device = locs.device
          Params =
            Params.ofList
                [ "logits", Tensor.zeros([| k |], dtype, locs.device)
                  "locs", locs
                  "logScales", Tensor.full([| k; dim |], log scale, dtype, locs.device) ]
          LogProb =
            fun p z ->
                let logScales = p["logScales"]
                let u = (z.unsqueeze 1 - p["locs"]) * (-logScales).exp() // [n; k; dim]
                let perComponent = u.square().sum(2) * -0.5 - logScales.sum(1) - 0.5 * float dim * log2Pi
                (perComponent + p["logits"].logsoftmax(0)).logsumexp(1)
          Sample =
            fun device p gen n ->
                // Pick components by inverse-CDF on the mixture weights, then reparameterise.
                let weights = p["logits"].softmax(0).noDiff()
                let cdf = weights.cumsum(0)
                let u = gen.uniform([| n |], dtype = dtype, device = device)
                let comp = cdf.searchsorted(u).cast(dtype).clamp(0.0, float (k - 1)).cast(Dtype.Int32)
                let index = comp.unsqueeze(1).expand [| n; dim |]
                let eps = gen.normal([| n; dim |], dtype = dtype, device = device)
                p["locs"].gather(0, index) + eps * p["logScales"].exp().gather(0, index) }

    /// Draws n rows with parameters `p` on the distribution's device.
    let sample (d: Distribution) (p: Params) (gen: Generator) (n: int) = d.Sample d.Device p gen n

    /// The distribution with its parameters on `device`, drawing its samples there.
    let moveTo (device: Device) (d: Distribution) = { d with Device = device; Params = d.Params.Map(fun t -> t.moveTo device) }
