namespace Flows.Tensors.Backend

/// The counter-based hash behind every random draw: the same (seed, counter) gives the same bits
/// on every backend, so a GPU kernel can reproduce the CPU stream element by element.
[<RequireQualifiedAccess>]
module Counter =

    /// SplitMix64 finaliser of seed and counter: 64 well-mixed bits.
    let inline bits (seed: uint64) (counter: uint64) =
        let mutable z = seed + (counter + 1UL) * 0x9E3779B97F4A7C15UL
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    /// A uniform draw in the open interval (0, 1) from the top 53 bits.
    let inline unit (seed: uint64) (counter: uint64) =
        (float (bits seed counter >>> 11) + 0.5) * (1.0 / 9007199254740992.0)

    /// A standard normal draw by Box–Muller from the counters 2i and 2i+1 after `offset`.
    let inline normal (seed: uint64) (offset: uint64) (i: uint64) =
        let u1 = unit seed (offset + 2UL * i)
        let u2 = unit seed (offset + 2UL * i + 1UL)
        sqrt (-2.0 * log u1) * cos (2.0 * System.Math.PI * u2)
