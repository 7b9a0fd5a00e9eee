namespace Flows.Properties.Support

open Flows.Laws
open Flows.Tensors

/// Central differences in float64 and the JAX-style adjoint identity (jax check_vjp): for a random
/// tangent t and cotangent c, ⟨c, J t⟩ by central differences equals ⟨Jᵀ c, t⟩ from the VJP.
/// Functions take and return several tensors, so multi-input and multi-output ops check alike.
[<RequireQualifiedAccess>]
module FiniteDifferences =

    /// The step of the central differences.
    let eps = 1e-6

    /// ⟨a, b⟩ over all elements, in plain float64.
    let inner (a: float[]) (b: float[]) =
        let mutable s = 0.0
        for i in 0 .. a.Length - 1 do s <- s + a[i] * b[i]
        s

    // x + s t, formed on arrays so the finite differences do not lean on the tensor arithmetic.
    let private shifted (s: float) (x: Tensor) (t: Tensor) =
        Tensor.ofArray(Array.map2 (fun a b -> a + s * b) (x.toArray64()) (t.toArray64()), x.shape)

    /// (f(x + eps t) - f(x - eps t)) / 2 eps for each output, as flat float64 arrays.
    let directional (f: Tensor[] -> Tensor[]) (xs: Tensor[]) (ts: Tensor[]) : float[][] =
        let plus = f (Array.map2 (shifted eps) xs ts)
        let minus = f (Array.map2 (shifted -eps) xs ts)
        let difference (p: Tensor) (m: Tensor) = Array.map2 (fun a b -> (a - b) / (2.0 * eps)) (p.toArray64()) (m.toArray64())
        Array.map2 difference plus minus

    /// The column of the Jacobian for input element j of input k: a central difference along e_j.
    let column (f: Tensor[] -> Tensor[]) (xs: Tensor[]) (k: int) (j: int) : float[][] =
        let ts = xs |> Array.mapi (fun i x -> Tensor.ofArray(Array.init x.numel (fun e -> if i = k && e = j then 1.0 else 0.0), x.shape))
        directional f xs ts

    let private describe (xs: Tensor[]) = xs |> Array.map (fun x -> Shape.show x.shape) |> String.concat ", "

    /// Checks the adjoint identity of `f` at `xs` along a tangent and a cotangent drawn from `seed`,
    /// and that the VJP's primal outputs and adjoint shapes are those of the plain evaluation.
    let checkVjp (what: string) (seed: int) (f: Tensor[] -> Tensor[]) (xs: Tensor[]) =
        let g = Generator(uint64 seed ^^^ 0x9E3779B97F4A7C15UL)
        let ts = xs |> Array.map (fun x -> Draw.normal g x.shape)
        let ys, pullback = Ad.vjpN f xs
        let plain = f xs
        Array.iteri2 (fun k (y: Tensor) (p: Tensor) -> Close.tensors $"{what}: output {k} under vjp" Tolerance.float64 p y) ys plain
        let cs = ys |> Array.map (fun y -> Draw.normal g y.shape)
        let adjoints = pullback cs
        Array.iteri2 (fun k (a: Tensor) (x: Tensor) -> Close.shape $"{what}: adjoint of input {k}" x.shape a) adjoints xs
        let analytic = Array.fold2 (fun acc (a: Tensor) (t: Tensor) -> acc + inner (a.toArray64()) (t.toArray64())) 0.0 adjoints ts
        let numeric = Array.fold2 (fun acc (c: Tensor) d -> acc + inner (c.toArray64()) d) 0.0 cs (directional f xs ts)
        Close.scalar $"{what}: <c, J t> by central differences vs <J^T c, t> by VJP at inputs [{describe xs}] (seed {seed})"
            Tolerance.centralDifference numeric analytic

    /// The VJP as a function of the inputs and the cotangent: (x..., c) ↦ J(x)ᵀ c. Its own VJP is
    /// the second derivative (PyTorch gradgradcheck, JAX check_grads order 2).
    let vjpFunction (f: Tensor[] -> Tensor) (inputsAndCotangent: Tensor[]) : Tensor[] =
        let n = inputsAndCotangent.Length - 1
        let _, pullback = Ad.vjpN (fun xs -> [| f xs |]) inputsAndCotangent[.. n - 1]
        pullback [| inputsAndCotangent[n] |]

    /// Checks the adjoint identity of the VJP function of `f` at `xs` and a cotangent from `seed`.
    let checkVjpOfVjp (what: string) (seed: int) (f: Tensor[] -> Tensor) (xs: Tensor[]) =
        let c = Draw.normal (Generator(uint64 seed + 17UL)) (f xs).shape
        checkVjp $"{what} (second order)" seed (vjpFunction f) (Array.append xs [| c |])
