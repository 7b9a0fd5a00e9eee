/// Sylvester normalising flows (van den Berg et al. 2018): y = x + Q·R·tanh(R̃·Qᵀx + b), forward
/// base → data, with Q orthogonal and R, R̃ upper triangular. log|det J| = Σᵢ log|1 + tanh'(aᵢ)·R̃ᵢᵢ·Rᵢᵢ|.
/// Diagonals are tanh of stored values, so |Rᵢᵢ·R̃ᵢᵢ| < 1 and every layer is invertible.
/// Q: a product of Householder reflections (H-SNF) or the identity / the reversal (T-SNF).
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

let private orthogonal (kind: Orthogonal) (dim: int) (p: Params) (like: Tensor) =
    match kind with
    | Orthogonal.Householder k ->
        let v = p["householder"]
        let eye = Tensor.eye(dim, like.dtype, like.device)
        Seq.fold (fun (q: Tensor) i ->
            let r = v.narrow(0, i, 1).squeeze 0
            q - (q.matmul(r).outer r) * (2.0 / (r.square().sum() + 1e-12))) eye [ 0 .. k - 1 ]
    | Orthogonal.Triangular false -> Tensor.eye(dim, like.dtype, like.device)
    | Orthogonal.Triangular true -> Tensor.eye(dim, like.dtype, like.device).flip [| 1 |]

let private triangular (p: Params) (name: string) =
    p[name].triu(1) + p[name + "Diag"].tanh().diagEmbed()

let private forward (kind: Orthogonal) (dim: int) (p: Params) (_: Context) (x: Tensor) =
    let q = orthogonal kind dim p x
    let r, rt = triangular p "r", triangular p "rTilde"
    let a = x.matmul(q).matmul(rt.transpose()) + p["b"]
    let h = a.tanh()
    let y = x + h.matmul(r.transpose()).matmul(q.transpose())
    let diag = rt.diagonal() * r.diagonal()
    y, ((1.0 - h.square()) * diag + 1.0).abs().log().sum(1)

let private inverse (kind: Orthogonal) (dim: int) (p: Params) (_: Context) (y: Tensor) =
    let q = orthogonal kind dim p y
    let r, rt = triangular p "r", triangular p "rTilde"
    let b = p["b"]
    let w = y.matmul q
    let column (t: Tensor) (i: int) = t.narrow(1, i, 1).squeeze 1
    let entry (m: Tensor) (i: int) (j: int) = m.narrow(0, i, 1).narrow(1, j, 1).reshape [||]
    // solve v_i = w_i − Σ_{j≥i} R_ij tanh(a_j), a_j = Σ_{k≥j} R̃_jk v_k + b_j, from the last coordinate
    let solved = Array.zeroCreate<Tensor> dim
    let activations = Array.zeroCreate<Tensor> dim
    for i in dim - 1 .. -1 .. 0 do
        let known = [ for k in i + 1 .. dim - 1 -> entry rt i k * solved[k] ]
        let c = List.fold (+) (b.narrow(0, i, 1).expand [| y.shape[0] |]) known
        let later = [ for j in i + 1 .. dim - 1 -> entry r i j * activations[j] ]
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
    let x = Tensor.stack(solved, 1).matmul(q.transpose())
    let diag = rt.diagonal() * r.diagonal()
    x, -(((1.0 - h.square()) * diag + 1.0).abs().log().sum(1))

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
    { Entry.exact name rebuild (create kind) (fun g t d -> create kind g t d |> Entry.perturb g 0.7) with
        InverseKind = InverseKind.Iterative tolerance }

[<CatalogueEntry>]
let householderEntry = entryFor "sylvester-householder" (Orthogonal.Householder 2)

[<CatalogueEntry>]
let triangularEntry = entryFor "sylvester-triangular" (Orthogonal.Triangular true)
