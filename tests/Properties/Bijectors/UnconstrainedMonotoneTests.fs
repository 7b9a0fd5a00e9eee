/// Family laws of UMNN: the quadrature rules integrate polynomials exactly up to their degree, the
/// transformer's quadrature integral matches a 2000-interval float64 Simpson quadrature of the same
/// integrand within 1e-5 (ELU + 1 has a second-derivative jump, so the rules converge only
/// algebraically: 24 Clenshaw–Curtis intervals miss by about 7e-6 at x = 4), and its log-derivative
/// is log(ELU(o) + 1) at x. Bisection, inverse-of-inverse, monotonicity and triangularity of the
/// whole layer are the shared laws in NeuralAutoregressiveTests and MonotoneLayerTests.
module Flows.Properties.Bijectors.UnconstrainedMonotoneTests

open Xunit
open Flows
open Flows.Nn
open Flows.Transformers
open Flows.Tensors
open Flows.Laws
open Flows.Properties.Support

/// ∫_{−1}^{1} s^k ds in closed form.
let private monomialIntegral (k: int) = if k % 2 = 1 then 0.0 else 2.0 / float (k + 1)

[<Fact>]
let ``Clenshaw-Curtis with n intervals integrates s^k exactly for k up to n, with positive weights`` () =
    for n in 1 .. 40 do
        let nodes, weights = Quadrature.clenshawCurtis n
        if weights |> Array.exists (fun w -> not (w > 0.0)) then failwith $"n = {n}: a weight is not positive: {weights}"
        for k in 0 .. n do
            let sum = Array.fold2 (fun acc s w -> acc + w * pown s k) 0.0 nodes weights
            Close.scalar $"Clenshaw-Curtis n = {n}, ∫ s^{k}" { Abs = 1e-13; Rel = 1e-13 } (monomialIntegral k) sum

[<Fact>]
let ``Gauss-Legendre with n points integrates s^k exactly for k up to 2n - 1, with positive weights`` () =
    for n in 1 .. 30 do
        let nodes, weights = Quadrature.gaussLegendre n
        if weights |> Array.exists (fun w -> not (w > 0.0)) then failwith $"n = {n}: a weight is not positive: {weights}"
        for k in 0 .. 2 * n - 1 do
            let sum = Array.fold2 (fun acc s w -> acc + w * pown s k) 0.0 nodes weights
            Close.scalar $"Gauss-Legendre n = {n}, ∫ s^{k}" { Abs = 1e-13; Rel = 1e-13 } (monomialIntegral k) sum

/// A random UMNN transformer for one feature: embedding E = 2, a [8] tanh integrand perturbed by
/// N(0, 0.3²) like the catalogue's random instances, raw β and h N(0, 1).
let private randomIntegrand (seed: int) (quadrature: Quadrature) (nodes: int) =
    let g = Draw.generator seed
    let net = Mlp.create g Dtype.Float64 [ 3; 8; 1 ] false |> fun p -> p.Map(fun t -> t + Draw.normal g t.shape * 0.3)
    Integrand.ofRaw net Activation.Tanh (Integrand.rule quadrature nodes) (Draw.normal g [| 1; 1; 3 |])

/// Composite Simpson on [0, x] with 2000 intervals, from the integrand's values at its 2001 points.
let private simpson (it: Integrand) (x: float) =
    let intervals = 2000
    let h = x / float intervals
    let f = (Integrand.value it (Tensor.ofArray(Array.init (intervals + 1) (fun i -> h * float i), [| 1; 1; intervals + 1 |]))).toArray64()
    h / 3.0 * (Array.indexed f |> Array.sumBy (fun (i, v) -> (if i = 0 || i = intervals then 1.0 elif i % 2 = 1 then 4.0 else 2.0) * v))

/// The rules and resolutions of the catalogue's entries.
let rules : seq<obj[]> = [ [| box "clenshaw-curtis"; box 24 |]; [| box "gauss-legendre"; box 24 |] ]

[<Theory; MemberData(nameof rules)>]
let ``the quadrature integral matches a 2000-interval Simpson quadrature of the integrand, and the log-derivative is log f at x`` (rule: string) (nodes: int) =
    Gens.check 10 Gens.seed (fun seed ->
        let it = randomIntegrand seed (Quadrature.parse rule) nodes
        let xs = [| -4.0; -2.5; -1.0; -0.3; 0.0; 0.2; 1.0; 2.5; 4.0 |]
        let z, logDerivative = Integrand.apply it (Tensor.ofArray(xs, [| xs.Length; 1 |]))
        let beta = it.Offset.toArray64()[0]
        Close.arrays $"{rule} ({nodes}) integral (seed {seed})" { Abs = 1e-5; Rel = 1e-5 } (xs |> Array.map (fun x -> beta + simpson it x)) (z.toArray64())
        let atX = (Integrand.value it (Tensor.ofArray(xs, [| 1; 1; xs.Length |]))).toArray64()
        Close.arrays $"{rule} log-derivative (seed {seed})" Tolerance.float64 (atX |> Array.map log) (logDerivative.toArray64()))

[<Fact>]
let ``gradients through the quadrature nodes match central differences in x, the embedding and the integrand's weights`` () =
    Gens.check 5 Gens.seed (fun seed ->
        let it = randomIntegrand seed Quadrature.ClenshawCurtis 24
        let x = Draw.normal (Draw.generator (seed + 1)) [| 3; 1 |] * 1.5
        let map (inputs: Tensor[]) =
            let moved = { it with Embedding = inputs[1]; Net = it.Net.With [ "0.weight", inputs[2] ] }
            let z, logDerivative = Integrand.apply moved inputs[0]
            [| z; logDerivative |]
        FiniteDifferences.checkVjp $"UMNN (seed {seed})" seed map [| x; it.Embedding; it.Net["0.weight"] |])
