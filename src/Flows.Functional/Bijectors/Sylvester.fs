/// Sylvester normalising flows (van den Berg et al. 2018): y = x + Q·R·tanh(R̃·Qᵀx + b), forward
/// base → data, with Q orthogonal and R, R̃ upper triangular. log|det J| = Σᵢ log|1 + tanh'(aᵢ)·R̃ᵢᵢ·Rᵢᵢ|.
/// Diagonals are tanh of stored values, so |Rᵢᵢ·R̃ᵢᵢ| < 1 and every layer is invertible.
/// Q: a product of Householder reflections (H-SNF) or the identity / the reversal (T-SNF); the
/// amortised layers (AmortisedSylvester) also take Q with M ≤ D orthonormal columns (O-SNF).
/// Inverse: in the rotated coordinates v = Qᵀx the map is triangular, so the coordinates are
/// solved last to first, each a monotone 1-D equation (bisection plus a differentiable Newton step).
module Flows.Bijectors.Sylvester

open Flows
open Flows.Tensors

/// How Q is made.
[<RequireQualifiedAccess>]
type Orthogonal =
    /// Q = H₁⋯H_k with H = I − 2vvᵀ/‖v‖².
    | Householder of reflections: int
    /// Q = I, or the reversal permutation when `reversed` (alternate it between layers).
    | Triangular of reversed: bool

/// Tolerance of the inverse's root finds.
let tolerance = 1e-10

// x·M for rows x [n; a]: one product when M [a; b] is shared, a batched one when each row has its
// own M [n; a; b] (the amortised layers)
let private times (x: Tensor) (m: Tensor) = if m.dim = 2 then x.matmul m else x.unsqueeze(1).matmul(m).squeeze 1

// x·Mᵀ likewise
let private timesTransposed (x: Tensor) (m: Tensor) = times x (m.transpose())

/// Q = H₁⋯H_k with H = I − 2vvᵀ/‖v‖², from reflection vectors [k; D] (one Q) or [n; k; D] (one per row).
let householder (v: Tensor) =
    let d = v.shape[v.dim - 1]
    let eye = Tensor.eye(d, v.dtype, v.device)
    let start = if v.dim = 2 then eye else eye.expand [| v.shape[0]; d; d |]
    Seq.fold (fun (q: Tensor) i ->
        let r = v.narrow(-2, i, 1).squeeze -2
        let scale = (2.0 / (r.square().sum(-1, true) + 1e-12)).unsqueeze -1
        q - q.matmul(r.unsqueeze -1) * r.unsqueeze -2 * scale) start [ 0 .. v.shape[v.dim - 2] - 1 ]

/// The first `columns` columns of the Cayley transform Q = (I + A)⁻¹(I − A) of the skew-symmetric
/// A = (S − Sᵀ)/2, from any S [D; D] or [n; D; D]: orthonormal columns to rounding (I + A is always
/// invertible), differentiable, with no iteration to converge (O-SNF's Q, van den Berg et al. 2018).
let cayley (columns: int) (s: Tensor) =
    let d = s.shape[s.dim - 1]
    Guard.that (nameof columns) (columns >= 1 && columns <= d) $"must be in [1, {d}] (the dimension), got {columns}"
    let a = (s - s.transpose()) * 0.5
    let eye = Tensor.eye(d, s.dtype, s.device)
    (eye + a).inverse().matmul((eye - a).narrow(-1, 0, columns))

let private orthogonal (kind: Orthogonal) (dim: int) (p: Params) (like: Tensor) =
    match kind with
    | Orthogonal.Householder _ -> householder p["householder"]
    | Orthogonal.Triangular false -> Tensor.eye(dim, like.dtype, like.device)
    | Orthogonal.Triangular true -> Tensor.eye(dim, like.dtype, like.device).flip [| 1 |]

/// An upper-triangular R with tanh of the stored diagonal, from stored [M; M] and [M] (or one per
/// row, [n; M; M] and [n; M]).
let triangular (raw: Tensor) (diagonal: Tensor) = raw.triu(1) + diagonal.tanh().diagEmbed()

/// y = x + Q·R·tanh(R̃·Qᵀx + b) and its log-det, for rows x [n; D]: Q [D; M] with orthonormal
/// columns, R, R̃ upper triangular [M; M] and b [M] shared, or any of them per row ([n; …]).
let forwardWith (q: Tensor) (r: Tensor) (rt: Tensor) (b: Tensor) (x: Tensor) =
    let h = (timesTransposed (times x q) rt + b).tanh()
    let y = x + timesTransposed (timesTransposed h r) q
    let diag = rt.diagonal() * r.diagonal()
    y, ((1.0 - h.square()) * diag + 1.0).abs().log().sum(1)

/// Undoes `forwardWith` (same shapes), with the inverse's log-det. Outside Q's columns the map is the
/// identity; inside, in v = Qᵀx, it is triangular, solved last coordinate first.
let inverseWith (q: Tensor) (r: Tensor) (rt: Tensor) (b: Tensor) (y: Tensor) =
    let n, m = y.shape[0], r.shape[r.dim - 1]
    let w = times y q
    let column (t: Tensor) (i: int) = if t.dim = 1 then t.narrow(0, i, 1).expand [| n |] else t.narrow(1, i, 1).squeeze 1
    let entry (t: Tensor) (i: int) (j: int) = t.narrow(-2, i, 1).narrow(-1, j, 1).reshape(if t.dim = 2 then [||] else [| n |])
    // solve v_i = w_i − Σ_{j≥i} R_ij tanh(a_j), a_j = Σ_{k≥j} R̃_jk v_k + b_j, from the last coordinate
    let solved = Array.zeroCreate<Tensor> m
    let activations = Array.zeroCreate<Tensor> m
    for i in m - 1 .. -1 .. 0 do
        let known = [ for k in i + 1 .. m - 1 -> entry rt i k * solved[k] ]
        let c = List.fold (+) (column b i) known
        let later = [ for j in i + 1 .. m - 1 -> entry r i j * activations[j] ]
        let target = List.fold (-) (column w i) later
        let rii, rtii = entry r i i, entry rt i i
        let f (v: Tensor) = v + (v * rtii + c).tanh() * rii
        let f' (v: Tensor) = (1.0 - (v * rtii + c).tanh().square()) * (rii * rtii) + 1.0
        let spread = rii.abs().noDiff() + 1e-3
        let root = RootFind.bisect f target (target - spread) (target + spread) tolerance
        let v = RootFind.newtonStep f f' target root
        solved[i] <- v
        activations[i] <- (v * rtii + c).tanh()
    let h = Tensor.stack(activations, 1)
    let x = y - timesTransposed (timesTransposed h r) q
    let diag = rt.diagonal() * r.diagonal()
    x, -(((1.0 - h.square()) * diag + 1.0).abs().log().sum(1))

let private forward (kind: Orthogonal) (dim: int) (p: Params) (_: Context) (x: Tensor) =
    forwardWith (orthogonal kind dim p x) (triangular p["r"] p["rDiag"]) (triangular p["rTilde"] p["rTildeDiag"]) p["b"] x

let private inverse (kind: Orthogonal) (dim: int) (p: Params) (_: Context) (y: Tensor) =
    inverseWith (orthogonal kind dim p y) (triangular p["r"] p["rDiag"]) (triangular p["rTilde"] p["rTildeDiag"]) p["b"] y

/// A Sylvester layer with small random parameters.
let create (kind: Orthogonal) (gen: Generator) (dtype: Dtype) (dim: int) =
    Guard.positive (nameof dim) dim
    let small shape = gen.normal(shape, 0.0, 0.01, dtype)
    let reflections =
        match kind with
        | Orthogonal.Householder k ->
            Guard.positive "reflections" k
            [ "householder", gen.normal([| k; dim |], dtype = dtype) ]
        | Orthogonal.Triangular _ -> []
    let kindSetting =
        match kind with
        | Orthogonal.Householder k -> [ "orthogonal", Setting.Text "householder"; "reflections", Setting.Int k ]
        | Orthogonal.Triangular reversed -> [ "orthogonal", Setting.Text(if reversed then "reversed" else "identity") ]
    let name = match kind with Orthogonal.Householder _ -> "sylvester-householder" | Orthogonal.Triangular _ -> "sylvester-triangular"
    Bijector.create name (Settings.ofList ([ "dim", Setting.Int dim ] @ kindSetting)) [| dim |]
        (Params.ofList
            ([ "r", small [| dim; dim |]; "rDiag", small [| dim |]; "rTilde", small [| dim; dim |]
               "rTildeDiag", small [| dim |]; "b", small [| dim |] ] @ reflections))
        (forward kind dim) (inverse kind dim)

let private rebuild (dtype: Dtype) (s: Settings) =
    let kind =
        match Settings.text "orthogonal" s with
        | "householder" -> Orthogonal.Householder(Settings.int "reflections" s)
        | "reversed" -> Orthogonal.Triangular true
        | "identity" -> Orthogonal.Triangular false
        | other -> invalidArg "settings" $"unknown Sylvester orthogonal kind '{other}'"
    create kind (Generator 0UL) dtype (Settings.int "dim" s)

let private entryFor (name: string) (kind: Orthogonal) =
    { Entry.exact name rebuild (create kind) with
        InverseKind = InverseKind.Iterative tolerance }

[<CatalogueEntry>]
let householderEntry = entryFor "sylvester-householder" (Orthogonal.Householder 2)

[<CatalogueEntry>]
let triangularEntry = entryFor "sylvester-triangular" (Orthogonal.Triangular true)
