/// The masked-autoregressive layer (MAF, Papamakarios et al. 2017; zuko's MAF(univariate=...);
/// FlowJAX's MaskedAutoregressive): any element-wise transformer T whose raw parameters θ a MADE
/// computes from the features of smaller order (and the context):
///   inverse (data → base)  z = T(x; θ(x)), one pass (fast density), log|det| = Σ log T'(x)
///   forward (base → data)  x = T⁻¹(z; θ(x)), one feature at a time in degree order (sampling),
///   by `AutoregressiveInverse.byDegree` whether T inverts in closed form or iteratively.
/// MAF, IAF, the spline MAFs, NAF, SOS and UMNN are this layer with their transformers.
module Flows.Bijectors.MaskedAutoregressive

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// A masked-autoregressive layer's hyperparameters.
type Layer =
    { Dim: int
      Hidden: int list
      Order: Order
      Activation: Activation
      /// Masked residual blocks of width `Hidden.Head` (0: a plain masked MLP).
      ResidualBlocks: int
      ContextDim: int
      Transformer: Transformer }

/// The layer called `name`, saved with `settings` and its MADE's; the MADE's last layer starts at
/// zero (plus the transformer's initial noise), so the library's transformers start as the identity.
let layer (gen: Generator) (dtype: Dtype) (name: string) (settings: (string * Setting) list) (spec: Layer) =
    let t = spec.Transformer
    let count = t.ParameterCount
    let made, net =
        Made.create gen dtype
            { Dim = spec.Dim; Hidden = spec.Hidden; Multiplier = count; Order = spec.Order; ContextDim = spec.ContextDim
              ResidualBlocks = spec.ResidualBlocks; Activation = spec.Activation }
    let net = Transformer.perturbOutput gen dtype t net
    let raw (made': Params) (ctx: Context) (x: Tensor) = (Made.apply made made' ctx.Condition x).reshape [| x.shape[0]; spec.Dim; count |]
    let forward (p: Params) (ctx: Context) (z: Tensor) =
        let made' = p.Scope "made"
        z |> AutoregressiveInverse.byDegree made.Degrees (fun x d zd -> t.Inverse p zd ((raw made' ctx x).narrow(1, d, 1)))
    let inverse (p: Params) (ctx: Context) (x: Tensor) =
        let z, logDerivative = t.Forward p x (raw (p.Scope "made") ctx x)
        z, logDerivative.sum(1)
    Bijector.create name (Settings.ofList (settings @ Made.settings made)) [| spec.Dim |]
        (Params.concat [ net.Prefixed "made"; t.Params ]) forward inverse
