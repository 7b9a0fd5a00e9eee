/// Fixed element-wise bijections used as glue, each from the whole real line (base side) to its
/// data-side range, and the learnable element-wise affine map. Forward maps base → data.
/// log|det J| is the row sum of the element-wise log-derivatives.
module Flows.Bijectors.Elementwise

open Flows
open Flows.Tensors

let private map (name: string) (dim: int) (forward: Tensor -> Tensor * Tensor) (inverse: Tensor -> Tensor * Tensor) =
    Guard.positive (nameof dim) dim
    let rows (f: Tensor -> Tensor * Tensor) = fun (_: Params) (_: Context) (x: Tensor) ->
        let y, logDerivative = f x
        y, Bijector.sumRows logDerivative
    Bijector.create name (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |] Params.empty (rows forward) (rows inverse)

let private requireInside (name: string) (low: float) (high: float) (y: Tensor) =
    let outside = (y.le(y.scalarLike low) + y.ge(y.scalarLike high)).sum().toScalar()
    if outside > 0.0 then invalidArg "y" $"{name}: the inverse needs inputs in ({low}, {high}); {outside} are outside"

/// y = exp(x): log-derivative x; inverse log y (y > 0).
let exp (dim: int) =
    map "exp" dim (fun x -> x.exp(), x) (fun y ->
        requireInside "exp" 0.0 infinity y
        let x = y.log()
        x, -x)

/// y = σ(x): log-derivative log σ(x) + log σ(−x); inverse logit (0 < y < 1).
let sigmoid (dim: int) =
    let logDerivative (x: Tensor) = x.logsigmoid() + (-x).logsigmoid()
    map "sigmoid" dim (fun x -> x.sigmoid(), logDerivative x) (fun y ->
        requireInside "sigmoid" 0.0 1.0 y
        let x = y.log() - (-y).log1p()
        x, -(logDerivative x))

/// y = softplus(x): log-derivative log σ(x); inverse y + log(−expm1(−y)) (y > 0).
let softplus (dim: int) =
    map "softplus" dim (fun x -> x.softplus(), x.logsigmoid()) (fun y ->
        requireInside "softplus" 0.0 infinity y
        let x = y.softplusInverse()
        x, -(x.logsigmoid()))

/// y = tanh(x): log-derivative 2(log 2 − x − softplus(−2x)), finite for large |x|; inverse atanh.
let tanh (dim: int) =
    let logDerivative (x: Tensor) = ((-x) - (x * -2.0).softplus() + log 2.0) * 2.0
    map "tanh" dim (fun x -> x.tanh(), logDerivative x) (fun y ->
        requireInside "tanh" -1.0 1.0 y
        let x = (y.log1p() - (-y).log1p()) * 0.5
        x, -(logDerivative x))

/// y = x for x > 0, slope·x otherwise (slope > 0): log-derivative 0 or log slope.
let leakyRelu (slope: float) (dim: int) =
    Guard.positiveFloat (nameof slope) slope
    let logSlope (x: Tensor) = Tensor.where(x.gt(x.scalarLike 0.0), x.zerosLike(), x.fullLike(log slope))
    let b =
        map "leaky-relu" dim (fun x -> x.leakyRelu slope, logSlope x) (fun y ->
            let x = Tensor.where(y.gt(y.scalarLike 0.0), y, y / slope)
            x, -(logSlope x))
    { b with Settings = b.Settings |> Map.add "slope" (Setting.Float slope) }

/// Learnable y = x·exp(s) + t per dimension ("logScale" s, "shift" t); log|det| = Σ s.
/// Starts as the identity. With the shift fixed at zero it is NICE's diagonal scaling layer.
let affine (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    let forward (p: Params) (_: Context) (x: Tensor) =
        let s = p["logScale"]
        x * s.exp() + p["shift"], s.sum().expand [| x.shape[0] |]
    let inverse (p: Params) (_: Context) (y: Tensor) =
        let s = p["logScale"]
        (y - p["shift"]) * (-s).exp(), (-(s.sum())).expand [| y.shape[0] |]
    Bijector.create "affine" (Settings.ofList [ "dim", Setting.Int dim ]) [| dim |]
        (Params.ofList [ "logScale", Tensor.zeros([| dim |], dtype); "shift", Tensor.zeros([| dim |], dtype) ])
        forward inverse

let private fixedEntry (name: string) (domain: Domain) (make: int -> Bijector) : Entry =
    { Entry.exact name (fun _ s -> make (Settings.int "dim" s)) (fun _ _ d -> make d) with
        Domain = domain }

[<CatalogueEntry>]
let expEntry = fixedEntry "exp" Domain.Positive exp

[<CatalogueEntry>]
let sigmoidEntry = fixedEntry "sigmoid" (Domain.Interval(0.0, 1.0)) sigmoid

[<CatalogueEntry>]
let softplusEntry = fixedEntry "softplus" Domain.Positive softplus

[<CatalogueEntry>]
let tanhEntry = fixedEntry "tanh" (Domain.Interval(-1.0, 1.0)) tanh

[<CatalogueEntry>]
let leakyReluEntry =
    Entry.exact "leaky-relu" (fun _ s -> leakyRelu (Settings.float "slope" s) (Settings.int "dim" s)) (fun _ _ d -> leakyRelu 0.2 d)

[<CatalogueEntry>]
let affineEntry =
    { Entry.exact "affine" (fun t s -> affine t (Settings.int "dim" s)) (fun _ t d -> affine t d) with IdentityAtInit = true }
