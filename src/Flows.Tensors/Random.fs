namespace Flows.Tensors

open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

/// A seeded source of random tensors. It is counter-based: draw k uses the counters after those of
/// draws 1..k-1, so the same seed gives the same numbers on every run and every backend. There is
/// no global generator: whoever needs randomness is handed one.
[<Sealed>]
type Generator(seed: uint64) =
    let mutable offset = 0UL
    let gate = obj ()

    /// The seed this generator started from.
    member _.Seed = seed

    member private _.Draw(kind: RandomKind, shape: int[], dtype: Dtype, device: Device) =
        Shape.validate "random" shape
        let start =
            lock gate (fun () ->
                let s = offset
                offset <- offset + 2UL * uint64 (Shape.numel shape)
                s)
        Tensor((Registry.Get device).Random(kind, shape, dtype, seed, start))

    /// Standard normal draws (or N(mean, std²)).
    member g.normal(shape: int[], ?mean: float, ?std: float, ?dtype: Dtype, ?device: Device) =
        g.Draw(RandomKind.Normal(defaultArg mean 0.0, defaultArg std 1.0), shape, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
    /// Uniform draws on [low, high), by default [0, 1).
    member g.uniform(shape: int[], ?low: float, ?high: float, ?dtype: Dtype, ?device: Device) =
        g.Draw(RandomKind.Uniform(defaultArg low 0.0, defaultArg high 1.0), shape, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
    /// ±1 with equal probability (Hutchinson probes).
    member g.rademacher(shape: int[], ?dtype: Dtype, ?device: Device) =
        g.Draw(RandomKind.Rademacher, shape, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
    /// 1 with probability p, else 0.
    member g.bernoulli(shape: int[], p: float, ?dtype: Dtype, ?device: Device) =
        if not (p >= 0.0 && p <= 1.0) then invalidArg (nameof p) $"bernoulli: p must be in [0, 1], got {p}"
        g.Draw(RandomKind.Bernoulli p, shape, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
    /// Integers in [low, high) as int32.
    member g.integers(shape: int[], low: int, high: int, ?device: Device) =
        if high <= low then invalidArg (nameof high) $"integers: high must exceed low, got [{low}, {high})"
        g.Draw(RandomKind.Integers(low, high), shape, Dtype.Int32, defaultArg device Device.Cpu)
    /// A random permutation of 0..n-1 (int32), by sorting uniform keys.
    member g.permutation(n: int) =
        let keys = g.uniform([| n |], dtype = Dtype.Float64).toArray64()
        Tensor.ofArray(Array.init n id |> Array.sortBy (fun i -> keys[i]))
    /// An independent generator whose seed is drawn from this one.
    member g.split() =
        let bits = g.integers([| 2 |], 0, System.Int32.MaxValue).toArrayInt()
        Generator((uint64 bits[0] <<< 31) ^^^ uint64 bits[1])
