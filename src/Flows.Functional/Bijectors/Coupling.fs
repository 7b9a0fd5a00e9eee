/// Coupling layers (NICE, Dinh et al. 2015; RealNVP, Dinh et al. 2017; FlowJAX's Coupling). The
/// features split into a conditioning part A, passed through unchanged, and a part B that any
/// element-wise transformer T maps with raw parameters θ computed from A (and the context) by a network:
///   forward (base → data)  y_A = x_A,  y_B = T(x_B; θ(x_A)),    log|det J| = Σ log T'(x_B)
///   inverse (data → base)  x_B = T⁻¹(y_B; θ(y_A)), the transformer's own inverse.
/// The affine and additive couplings below are this layer with `Affine.transformer` and `Affine.additive`.
module Flows.Bijectors.Coupling

open Flows
open Flows.Nn
open Flows.Tensors
open Flows.Transformers

/// Which features condition (A) and which are transformed (B).
[<RequireQualifiedAccess>]
type Mask =
    /// The first ⌊d/2⌋ features condition the rest (normflows' "channel" split); `flip` swaps roles.
    | Half of flip: bool
    /// Even features condition the odd ones (or the reverse with `flip`).
    | Alternating of flip: bool
    /// RealNVP's checkerboard on features read as channels × height × width images (the last two
    /// given): pixels with even row + column condition the others (the reverse with `flip`).
    | Checkerboard of height: int * width: int * flip: bool

/// How the raw scale output becomes a log-scale. Bounded maps cannot overflow exp.
[<RequireQualifiedAccess>]
type ScaleMap =
    /// log-scale = s (RealNVP as in normflows' "exp").
    | Exp
    /// log-scale = c·(2/π)·atan(s/c), |log-scale| < c (FrEIA's soft clamp).
    | SoftClamp of clamp: float
    /// Glow's σ(s + 2), on the data → base side: the density direction multiplies by it and only
    /// contracts, so log-scale = −log σ(s + 2) ≥ 0 base → data. (Dividing by σ towards the base is
    /// unbounded: pixels just off a learnt spike, as in Fashion-MNIST's black background, overflow.)
    | Sigmoid

/// The conditioning (A) and transformed (B) features of `dim` features under `mask`.
let split (dim: int) (mask: Mask) =
    let indices = Array.init dim id
    match mask with
    | Mask.Half flip ->
        let first, second = indices[.. dim / 2 - 1], indices[dim / 2 ..]
        if flip then second, first else first, second
    | Mask.Alternating flip ->
        let even, odd = indices |> Array.partition (fun i -> i % 2 = 0)
        if flip then odd, even else even, odd
    | Mask.Checkerboard(height, width, flip) ->
        let plane = height * width
        Guard.that (nameof dim) (height > 0 && width > 0 && dim % plane = 0)
            $"a {height} x {width} checkerboard needs a multiple of {plane} features, got {dim}"
        let white, black = indices |> Array.partition (fun i -> let p = i % plane in (p / width + p % width) % 2 = 0)
        if flip then black, white else white, black

/// The columns `idx` of rows x: narrowed when contiguous, gathered otherwise.
let columns (idx: int[]) (x: Tensor) =
    if idx = Array.init idx.Length (fun i -> idx[0] + i) then x.narrow(1, idx[0], idx.Length)
    else x.gather(1, (Tensor.ofArray idx).moveTo(x.device).unsqueeze(0).expand [| x.shape[0]; idx.Length |])

/// Joins the A and B columns back into feature order.
let merger (a: int[]) (b: int[]) =
    let order = FusedCoupling.mergeOrder a b
    fun (xa: Tensor) (yb: Tensor) ->
        let joined = Tensor.cat([| xa; yb |], 1)
        match order with
        | Some order -> columns order joined
        | None -> joined

// The context a conditional layer needs (none for an unconditional one).
let private condition (contextDim: int) (ctx: Context) =
    match ctx.Condition with
    | Some c when contextDim > 0 -> Some c
    | None when contextDim > 0 -> invalidArg "context" $"this coupling layer needs a context of {contextDim} features"
    | _ -> None

/// The conditioner's input: the A columns and, for a conditional layer, the context.
let conditionerInput (contextDim: int) (ctx: Context) (xa: Tensor) =
    match condition contextDim ctx with
    | Some c -> Tensor.cat([| xa; c |], 1)
    | None -> xa

/// The log-scale a raw network output stands for under `map`.
let logScale (map: ScaleMap) (s: Tensor) =
    match map with
    | ScaleMap.Exp -> s
    | ScaleMap.SoftClamp c -> (s / c).atan() * (c * 2.0 / System.Math.PI)
    | ScaleMap.Sigmoid -> -((s + 2.0).logsigmoid())

/// The saved name of a mask.
let maskName (mask: Mask) =
    match mask with
    | Mask.Half false -> "half"
    | Mask.Half true -> "half-flipped"
    | Mask.Alternating false -> "alternating"
    | Mask.Alternating true -> "alternating-flipped"
    | Mask.Checkerboard(h, w, flip) -> (if flip then "checkerboard-flipped:" else "checkerboard:") + $"{h}x{w}"

/// The mask a saved name stands for.
let parseMask (text: string) =
    match text with
    | "half" -> Mask.Half false
    | "half-flipped" -> Mask.Half true
    | "alternating" -> Mask.Alternating false
    | "alternating-flipped" -> Mask.Alternating true
    | t when t.StartsWith "checkerboard" ->
        let size = t.Substring(t.IndexOf ':' + 1).Split 'x'
        Mask.Checkerboard(int size[0], int size[1], t.StartsWith "checkerboard-flipped")
    | other -> invalidArg "settings" $"unknown coupling mask '{other}'"

/// The saved name of an affine scale map.
let scaleName (map: ScaleMap) =
    match map with
    | ScaleMap.Exp -> "exp"
    | ScaleMap.SoftClamp _ -> "soft-clamp"
    | ScaleMap.Sigmoid -> "sigmoid-contracting"

/// The affine scale map a saved name stands for (soft clamps at 2). "sigmoid" named the map of
/// earlier files, which divided by σ towards the base (unbounded, unlike Glow's); read as the
/// corrected map they would score another density, so they are refused rather than misread.
let parseScale (text: string) =
    match text with
    | "exp" -> ScaleMap.Exp
    | "soft-clamp" -> ScaleMap.SoftClamp 2.0
    | "sigmoid-contracting" -> ScaleMap.Sigmoid
    | "sigmoid" ->
        invalidArg "settings" "this coupling was saved with the earlier sigmoid scale, which divided by σ(s + 2) on the way to the base; it now multiplies, as Glow does, so the saved weights would describe another density: train the model again"
    | other -> invalidArg "settings" $"unknown coupling scale '{other}'"

/// How a coupling's conditioner lays out its |B|·P outputs.
[<RequireQualifiedAccess>]
type Layout =
    /// Output i·P + j is parameter j of transformed feature i (as a MADE's outputs).
    | ByFeature
    /// Output j·|B| + i: every shift, then every scale (the affine and additive couplings' layout,
    /// which their saved weights keep).
    | ByParameter

/// A coupling layer over any element-wise transformer.
type Layer =
    { Dim: int
      Mask: Mask
      Conditioner: Conditioner
      Transformer: Transformer
      Layout: Layout
      ContextDim: int }

// `layer`, with the fused primitive where the transformer has one (`FusedCoupling`) and the
// conditioner is an MLP; the composed code below stays its definition.
let private build (gen: Generator) (dtype: Dtype) (name: string) (settings: (string * Setting) list) (fusedHead: FusedCoupling.Head option) (spec: Layer) =
    Guard.that (nameof spec.Dim) (spec.Dim >= 2) $"a coupling layer needs at least 2 features, got {spec.Dim}"
    let a, b = split spec.Dim spec.Mask
    let t = spec.Transformer
    let count = t.ParameterCount
    let net = Conditioner.create gen dtype (a.Length + spec.ContextDim) (b.Length * count) spec.Conditioner |> Transformer.perturbOutput gen dtype t
    let merge = merger a b
    // By parameter, the output layer's rows are put in feature order on each call (k = i·P + j takes
    // row j·|B| + i): a few hundred weights moved rather than a batch of outputs. The two layouts
    // coincide when |B| or P is 1.
    let reorder =
        if spec.Layout = Layout.ByParameter && b.Length > 1 && count > 1 then
            let order = Array.init (b.Length * count) (fun k -> (k % count) * b.Length + k / count)
            let output = net.Names[net.Count - 2 ..]
            fun (p: Params) ->
                p.With [ for name in output ->
                             let t = p[name]
                             let index = (Tensor.ofArray order).moveTo(t.device)
                             name, t.gather(0, if t.dim = 1 then index else index.unsqueeze(1).expand t.shape) ]
        else id
    // raw parameters [n; |B|; P]
    let raw (p: Params) (ctx: Context) (xa: Tensor) =
        let h = Conditioner.apply spec.Conditioner (reorder (p.Scope "net")) (conditionerInput spec.ContextDim ctx xa)
        h.reshape [| xa.shape[0]; b.Length; count |]
    let composedForward (p: Params) (ctx: Context) (x: Tensor) =
        let xa = columns a x
        let yb, logDerivative = t.Forward p (columns b x) (raw p ctx xa)
        merge xa yb, logDerivative.sum(1)
    let composedInverse (p: Params) (ctx: Context) (y: Tensor) =
        let ya = columns a y
        let xb, logDerivative = t.Inverse p (columns b y) (raw p ctx ya)
        merge ya xb, logDerivative.sum(1)
    let fused =
        match fusedHead, spec.Conditioner with
        | Some head, Conditioner.Mlp(_, activation) ->
            let depth = Mlp.depth net
            let names = [ for l in 0 .. depth - 1 do yield $"net.{l}.weight"; yield $"net.{l}.bias" ]
            let plan: FusedCoupling.Plan =
                { A = a; B = b; Merge = FusedCoupling.mergeOrder a b; Activation = Mlp.fused activation; Depth = depth; Head = head
                  HasContext = spec.ContextDim > 0 }
            Some(fun (inverse: bool) (p: Params) (ctx: Context) (x: Tensor) ->
                let context = Option.toList (condition spec.ContextDim ctx)
                let inputs = Array.ofList ([ x ] @ context @ [ for name in names -> p[name] ])
                // the composed layer on the same inputs: the definition the fused one is checked against
                let reference (values: Tensor[]) =
                    let p' = p.With(List.mapi (fun i name -> name, values[1 + context.Length + i]) names)
                    let ctx' = if plan.HasContext then { ctx with Condition = Some values[1] } else ctx
                    let y, logDet = (if inverse then composedInverse else composedForward) p' ctx' values[0]
                    [| y; logDet |]
                let outputs = Tensor.fused(inputs, FusedCoupling.run plan inverse, reference)
                outputs[0], outputs[1])
        | _ -> None
    let forward (p: Params) (ctx: Context) (x: Tensor) =
        match fused with
        | Some run -> run false p ctx x
        | None -> composedForward p ctx x
    let inverse (p: Params) (ctx: Context) (y: Tensor) =
        match fused with
        | Some run -> run true p ctx y
        | None -> composedInverse p ctx y
    let own = [ "dim", Setting.Int spec.Dim; "mask", Setting.Text(maskName spec.Mask); "contextDim", Setting.Int spec.ContextDim ]
    Bijector.create name (Settings.ofList (own @ settings @ Conditioner.settings spec.Conditioner)) [| spec.Dim |]
        (Params.concat [ net.Prefixed "net"; t.Params ]) forward inverse

/// The coupling layer called `name`, saved with `settings` and its own (dim, mask, contextDim and the
/// conditioner's); the network's last layer starts at zero (plus the transformer's initial noise).
let layer (gen: Generator) (dtype: Dtype) (name: string) (settings: (string * Setting) list) (spec: Layer) =
    build gen dtype name settings None spec

/// An affine or additive coupling's hyperparameters.
type Spec =
    { Dim: int
      Mask: Mask
      Conditioner: Conditioner
      ScaleMap: ScaleMap
      /// false: additive (NICE) coupling.
      Affine: bool
      ContextDim: int }

// The fused form of an affine or additive coupling's transformer.
let private fusedHead (spec: Spec) =
    match spec.Affine, spec.ScaleMap with
    | false, _ -> FusedCoupling.Additive
    | true, ScaleMap.Exp -> FusedCoupling.exp
    | true, ScaleMap.SoftClamp c -> FusedCoupling.softClamp c
    | true, ScaleMap.Sigmoid -> FusedCoupling.contracting

/// The affine ("affine-coupling") or additive ("additive-coupling") coupling; starts as the identity.
let create (gen: Generator) (dtype: Dtype) (spec: Spec) =
    let name, transformer = if spec.Affine then "affine-coupling", Affine.transformer (logScale spec.ScaleMap) else "additive-coupling", Affine.additive
    build gen dtype name [ "scale", Setting.Text(if spec.Affine then scaleName spec.ScaleMap else "additive") ] (Some(fusedHead spec))
        ({ Dim = spec.Dim; Mask = spec.Mask; Conditioner = spec.Conditioner; Transformer = transformer; Layout = Layout.ByParameter
           ContextDim = spec.ContextDim }: Layer)

/// RealNVP's affine coupling with a soft-clamped log-scale (|log-scale| < 2).
let realNvp (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (mask: Mask) =
    create gen dtype { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp(hidden, Activation.Relu); ScaleMap = ScaleMap.SoftClamp 2.0; Affine = true; ContextDim = 0 }

/// NICE's additive coupling.
let nice (gen: Generator) (dtype: Dtype) (dim: int) (hidden: int list) (mask: Mask) =
    create gen dtype { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp(hidden, Activation.Relu); ScaleMap = ScaleMap.Exp; Affine = false; ContextDim = 0 }

let private rebuild (dtype: Dtype) (s: Settings) =
    let mask = parseMask (Settings.text "mask" s)
    let affine, scale =
        match Settings.text "scale" s with
        | "additive" -> false, ScaleMap.Exp
        | other -> true, parseScale other
    create (Generator 0UL) dtype
        { Dim = Settings.int "dim" s; Mask = mask; Conditioner = Conditioner.ofSettings s; ScaleMap = scale; Affine = affine
          ContextDim = Settings.int "contextDim" s }

let private entryFor (name: string) (spec: int -> Spec) : Entry =
    { Entry.exact name rebuild (fun g t d -> create g t (spec d)) with
        IdentityAtInit = true }

let private spec (affine: bool) (scale: ScaleMap) (mask: Mask) (dim: int) =
    { Dim = dim; Mask = mask; Conditioner = Conditioner.Mlp([ 8; 8 ], Activation.Tanh); ScaleMap = scale; Affine = affine; ContextDim = 0 }

[<CatalogueEntry>]
let realNvpEntry = entryFor "affine-coupling" (spec true (ScaleMap.SoftClamp 2.0) (Mask.Half false))

[<CatalogueEntry>]
let niceEntry = entryFor "additive-coupling" (spec false ScaleMap.Exp (Mask.Alternating false))
