namespace Flows.Laws

open Flows
open Flows.Tensors

/// One batch the laws run on, in float64: base-side rows `X`, data-side rows `Y` inside the
/// domain, the context when the bijector is conditional, and the seed they came from.
[<NoEquality; NoComparison>]
type LawSample =
    { Seed: int
      X: Tensor
      Y: Tensor
      Context: Context }

/// Drawing batches.
[<RequireQualifiedAccess>]
module LawSample =

    /// Points in a domain: the real line, the positive half-line or an open interval.
    let inDomain (gen: Generator) (domain: Domain) (shape: int[]) =
        match domain with
        | Domain.Real -> gen.normal(shape, 0.0, 1.5, Dtype.Float64)
        | Domain.Positive -> gen.normal(shape, 0.0, 1.0, Dtype.Float64).exp()
        | Domain.Interval(low, high) -> gen.uniform(shape, low + 0.01 * (high - low), high - 0.01 * (high - low), Dtype.Float64)

    /// The batch of `seed` for rows of `dim` columns: 1 to MaxBatch rows.
    let draw (options: LawOptions) (dim: int) (seed: int) =
        let gen = Generator(uint64 seed)
        let batch = 1 + (abs (seed / 7) % options.MaxBatch)
        let context =
            if options.ContextDim = 0 then Context.none
            else Context.ofCondition (gen.normal([| batch; options.ContextDim |], dtype = Dtype.Float64))
        { Seed = seed
          X = gen.normal([| batch; dim |], 0.0, 1.5, Dtype.Float64)
          Y = inDomain gen options.Domain [| batch; dim |]
          Context = context }
