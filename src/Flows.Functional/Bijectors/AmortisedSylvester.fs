/// Amortised Sylvester flows (van den Berg et al. 2018, the VAE posteriors O-, H- and T-SNF): a
/// conditional bijector y = x + Q·R·tanh(R̃·Qᵀx + b), forward base → data, whose R, R̃, b (and Q for
/// O- and H-SNF) for each row are a linear map of that row's context features h (Nn.Amortised).
/// Q has M ≤ D orthonormal columns; R, R̃ are M × M upper triangular with tanh diagonals, so
/// log|det J| = Σᵢ log|1 + tanh'(aᵢ)·R̃ᵢᵢ·Rᵢᵢ| and every row's map is invertible. The maps are
/// Sylvester's (forwardWith, inverseWith).
module Flows.Bijectors.AmortisedSylvester

open Flows
open Flows.Nn
open Flows.Tensors

/// How each row's Q is made.
[<RequireQualifiedAccess>]
type Kind =
    /// O-SNF: M = `columns` orthonormal columns, the Cayley transform of a per-row D × D matrix
    /// (Sylvester.cayley: orthonormal to rounding, where van den Berg iterate to convergence).
    | Orthogonal of columns: int
    /// H-SNF: a per-row product of `reflections` Householder reflections (M = D).
    | Householder of reflections: int
    /// T-SNF: Q = I, or the reversal when `reversed`, shared by every row (M = D).
    | Triangular of reversed: bool

/// The bijector's (and its catalogue entry's) name for a kind.
let name (kind: Kind) =
    match kind with
    | Kind.Orthogonal _ -> "amortised-sylvester-orthogonal"
    | Kind.Householder _ -> "amortised-sylvester-householder"
    | Kind.Triangular _ -> "amortised-sylvester-triangular"

let private columnsOf (kind: Kind) (dim: int) =
    match kind with
    | Kind.Orthogonal columns -> columns
    | Kind.Householder _
    | Kind.Triangular _ -> dim

// per-row parameter shapes: R, its diagonal, R̃, its diagonal, b, then what Q is made from
let private shapes (kind: Kind) (dim: int) =
    let m = columnsOf kind dim
    let q =
        match kind with
        | Kind.Orthogonal _ -> [ [| dim; dim |] ]
        | Kind.Householder reflections -> [ [| reflections; dim |] ]
        | Kind.Triangular _ -> []
    [ [| m; m |]; [| m |]; [| m; m |]; [| m |]; [| m |] ] @ q

let private q (kind: Kind) (dim: int) (parts: Tensor[]) (like: Tensor) =
    match kind with
    | Kind.Orthogonal columns -> Sylvester.cayley columns parts[5]
    | Kind.Householder _ -> Sylvester.householder parts[5]
    | Kind.Triangular false -> Tensor.eye(dim, like.dtype, like.device)
    | Kind.Triangular true -> Tensor.eye(dim, like.dtype, like.device).flip [| 1 |]

let private kindOf (s: Settings) =
    match Settings.text "orthogonal" s with
    | "orthogonal" -> Kind.Orthogonal(Settings.int "columns" s)
    | "householder" -> Kind.Householder(Settings.int "reflections" s)
    | "triangular" -> Kind.Triangular(Settings.int "reversed" s = 1)
    | other -> invalidArg "settings" $"unknown amortised Sylvester kind '{other}'"

/// A Sylvester layer on `dim` whose parameters come from contexts of `contextDim` features.
let create (kind: Kind) (gen: Generator) (dtype: Dtype) (dim: int) (contextDim: int) =
    Guard.positive (nameof dim) dim
    let kindSettings =
        match kind with
        | Kind.Orthogonal columns ->
            Guard.that (nameof columns) (columns >= 1 && columns <= dim) $"must be in [1, {dim}] (the dimension), got {columns}"
            [ "orthogonal", Setting.Text "orthogonal"; "columns", Setting.Int columns ]
        | Kind.Householder reflections ->
            Guard.positive (nameof reflections) reflections
            [ "orthogonal", Setting.Text "householder"; "reflections", Setting.Int reflections ]
        | Kind.Triangular reversed -> [ "orthogonal", Setting.Text "triangular"; "reversed", Setting.Int(if reversed then 1 else 0) ]
    let shapes = shapes kind dim
    let rows = Amortised.rows (name kind) contextDim shapes
    let map (apply: Tensor -> Tensor -> Tensor -> Tensor -> Tensor -> Tensor * Tensor) (p: Params) (ctx: Context) (x: Tensor) =
        let parts = rows p ctx x
        apply (q kind dim parts x) (Sylvester.triangular parts[0] parts[1]) (Sylvester.triangular parts[2] parts[3]) parts[4] x
    let settings = Settings.ofList ([ "dim", Setting.Int dim; "contextDim", Setting.Int contextDim ] @ kindSettings)
    Bijector.create (name kind) settings [| dim |] (Amortised.create gen dtype contextDim (Amortised.outputs shapes))
        (map Sylvester.forwardWith) (map Sylvester.inverseWith)

/// The Q of amortised Sylvester layer `b` for the contexts in `ctx` and rows `x`: each row's [n; D; M]
/// for O- and H-SNF, the shared [D; D] for T-SNF.
let orthogonal (b: Bijector) (ctx: Context) (x: Tensor) =
    let kind, dim = kindOf b.Settings, b.Event[0]
    q kind dim (Amortised.rows b.Name (Settings.int "contextDim" b.Settings) (shapes kind dim) b.Params ctx x) x

let private rebuild (dtype: Dtype) (s: Settings) =
    create (kindOf s) (Generator 0UL) dtype (Settings.int "dim" s) (Settings.int "contextDim" s)

let private entryFor (kind: int -> Kind) =
    { Entry.exact (name (kind 1)) rebuild (fun g t d -> create (kind d) g t d 3) with
        ContextDim = Some 3
        InverseKind = InverseKind.Iterative Sylvester.tolerance }

[<CatalogueEntry>]
let orthogonalEntry = entryFor (fun d -> Kind.Orthogonal(max 1 (d - 1)))

[<CatalogueEntry>]
let householderEntry = entryFor (fun _ -> Kind.Householder 2)

[<CatalogueEntry>]
let triangularEntry = entryFor (fun _ -> Kind.Triangular true)
