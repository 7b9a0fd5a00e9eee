namespace Flows.Tensors.Backend.Cpu

open System.Numerics
open System.Runtime.Intrinsics

/// float32 maps faster than System.Numerics.Tensors' (which evaluates float32 exp in float64):
/// tanh is the activation of most conditioners and its cost dominated the small-MLP step.
module internal FastMath =

    // Eigen's rational approximation of tanh on [−7.9988, 7.9988] (beyond it tanh rounds to ±1 in
    // float32): odd numerator of degree 13 over an even denominator of degree 6; measured max error
    // 3.3e-7 (under 3 ulp at 1).
    let private clampTo = 7.99881172180175781f
    let private a1, a3, a5, a7 = 4.89352455891786e-03f, 6.37261928875436e-04f, 1.48572235717979e-05f, 5.12229709037114e-08f
    let private a9, a11, a13 = -8.60467152213735e-11f, 2.00018790482477e-13f, -2.76076847742355e-16f
    let private b0, b2, b4, b6 = 4.89352518554385e-03f, 2.26843463243900e-03f, 1.18534705686654e-04f, 1.19825839466702e-06f

    let private scalar (v: float32) =
        if System.Single.IsNaN v then v
        else
            let x = max -clampTo (min clampTo v)
            let x2 = x * x
            let p = (((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1
            let q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
            x * p / q

    /// tanh of a vector of float32 (NaN lanes pass through).
    [<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)>]
    let private tanhVector (v: Vector<float32>) =
        let c = Vector.Min(Vector.Max(v, Vector<float32>(-clampTo)), Vector<float32>(clampTo))
        let x2 = c * c
        let p =
            (((((Vector<float32>(a13) * x2 + Vector<float32>(a11)) * x2 + Vector<float32>(a9)) * x2 + Vector<float32>(a7)) * x2
              + Vector<float32>(a5)) * x2 + Vector<float32>(a3)) * x2 + Vector<float32>(a1)
        let q = ((Vector<float32>(b6) * x2 + Vector<float32>(b4)) * x2 + Vector<float32>(b2)) * x2 + Vector<float32>(b0)
        // min/max replace NaN lanes; put them back
        Vector.ConditionalSelect(Vector.Equals(v, v), c * p / q, v)

    [<System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)>]
    let private tanhVector512 (v: Vector512<float32>) =
        let c = Vector512.Min(Vector512.Max(v, Vector512.Create(-clampTo)), Vector512.Create(clampTo))
        let x2 = c * c
        let p =
            (((((Vector512.Create(a13) * x2 + Vector512.Create(a11)) * x2 + Vector512.Create(a9)) * x2 + Vector512.Create(a7)) * x2
              + Vector512.Create(a5)) * x2 + Vector512.Create(a3)) * x2 + Vector512.Create(a1)
        let q = ((Vector512.Create(b6) * x2 + Vector512.Create(b4)) * x2 + Vector512.Create(b2)) * x2 + Vector512.Create(b0)
        Vector512.ConditionalSelect(Vector512.Equals(v, v), c * p / q, v)

    /// r[rOff..] = tanh(x[xOff..] + bias[bOff..]) for n elements (r may be x); bias may be empty
    /// (no shift). 512-bit vectors where the CPU has them: the division dominates and halves.
    let tanhShifted (x: float32[]) (xOff: int) (bias: float32[]) (r: float32[]) (rOff: int) (n: int) =
        let shifted = bias.Length > 0
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            while i <= n - 16 do
                let v = Vector512.Create<float32>(System.ReadOnlySpan<float32>(x, xOff + i, 16))
                let v = if shifted then v + Vector512.Create<float32>(System.ReadOnlySpan<float32>(bias, i, 16)) else v
                (tanhVector512 v).CopyTo(System.Span(r, rOff + i, 16))
                i <- i + 16
        let w = Vector<float32>.Count
        while i <= n - w do
            let v = Vector<float32>(x, xOff + i)
            let v = if shifted then v + Vector<float32>(bias, i) else v
            (tanhVector v).CopyTo(r, rOff + i)
            i <- i + w
        while i < n do
            r[rOff + i] <- scalar (x[xOff + i] + (if shifted then bias[i] else 0.0f))
            i <- i + 1

    /// r[rOff..] = tanh(x[xOff..]) for n elements (r may be x).
    let tanh (x: float32[]) (xOff: int) (r: float32[]) (rOff: int) (n: int) = tanhShifted x xOff [||] r rOff n

    /// r = g·(1 − y²) (tanh's derivative from its output), 512-bit where the CPU has it.
    let tanhGrad (y: float32[]) (g: float32[]) (r: float32[]) =
        let n = y.Length
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            let one = Vector512.Create 1.0f
            while i <= n - 16 do
                let yv = Vector512.Create<float32>(System.ReadOnlySpan<float32>(y, i, 16))
                let gv = Vector512.Create<float32>(System.ReadOnlySpan<float32>(g, i, 16))
                (gv * (one - yv * yv)).CopyTo(System.Span(r, i, 16))
                i <- i + 16
        while i < n do
            r[i] <- g[i] * (1.0f - y[i] * y[i])
            i <- i + 1

    /// r ← tanh(r + bias) for every row of r [rows, m] with bias [m], in one call (no per-row call
    /// overhead; the bias vectors are reloaded from L1).
    let tanhBiasRows (r: float32[]) (bias: float32[]) (m: int) =
        let rows = if m = 0 then 0 else r.Length / m
        if Vector512.IsHardwareAccelerated && m % 16 = 0 then
            for row in 0 .. rows - 1 do
                let at = row * m
                let mutable j = 0
                while j < m do
                    let v = Vector512.Create<float32>(System.ReadOnlySpan<float32>(r, at + j, 16)) + Vector512.Create<float32>(System.ReadOnlySpan<float32>(bias, j, 16))
                    (tanhVector512 v).CopyTo(System.Span(r, at + j, 16))
                    j <- j + 16
        else
            for row in 0 .. rows - 1 do
                tanhShifted r (row * m) bias r (row * m) m
