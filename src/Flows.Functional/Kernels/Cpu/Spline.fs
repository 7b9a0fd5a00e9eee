namespace Flows.Kernels.Cpu

open System
open System.Numerics
open Flows.Tensors.Backend.Cpu
open Flows.Tensors.Backend.Cpu.GenericMath

/// The rational-quadratic spline (Durkan et al. 2019) from its knots, one pass per element, and its
/// hand-written backward: the fused form of the composite in Flows.Transformers.RationalQuadratic,
/// with the same sanitising (values outside [−B, B] replaced by 0 before the bin search, the right
/// end in the last bin, ξ clamped to [0, 1], the stable quadratic root), so nothing non-finite
/// appears at the interval's ends or at double roots. Element i owns knot row i: no two elements
/// write the same adjoint.
module internal Spline =

    /// One element's bin and the spline's intermediate values there, shared by forward and backward.
    [<Struct>]
    type Point<'T> =
        { Bin: int; X0: 'T; Width: 'T; Y0: 'T; Height: 'T; D0: 'T; D1: 'T
          /// h/w, the bin's mean slope.
          S: 'T
          /// ξ before the clamp (forward) or the quadratic's root (inverse).
          Raw: 'T
          Xi: 'T }

    // how many of the K − 1 inner knots edges[at + 1 .. at + K − 1] lie at or below v
    let inline binOf<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (edges: 'T[]) (at: int) (bins: int) (v: 'T) =
        let mutable lo = 0
        let mutable hi = bins - 1
        while lo < hi do
            let mid = (lo + hi) >>> 1
            if le edges[at + 1 + mid] v then lo <- mid + 1 else hi <- mid
        lo

    let inline two<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> () : 'T = 'T.CreateTruncating(2.0)

    let inline clamp01<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (x: 'T) =
        if lt x 'T.Zero then 'T.Zero elif gt x 'T.One then 'T.One else x

    // The stable root of a·t² + b·t + c (Spline.quadraticRoot): 2c / (−b − √disc) where b ≥ 0,
    // (−b + √disc) / 2a where b < 0; a non-positive discriminant counts as 0.
    let inline root<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (a: 'T) (b: 'T) (c: 'T) =
        let disc = b * b - ('T.CreateTruncating(4.0): 'T) * a * c
        let sq = if gt disc 'T.Zero then 'T.Sqrt disc else 'T.Zero
        if ge b 'T.Zero then
            let denominator = 'T.Zero - b - sq
            two () * c / (if ne denominator 'T.Zero then denominator else 'T.Zero - 'T.One)
        else
            let twoA = a * two ()
            ('T.Zero - b + sq) / (if ne twoA 'T.Zero then twoA else 'T.One)

    // The bin of the safe value v ∈ [−B, B] and ξ there.
    let inline locate<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (xk: 'T[]) (yk: 'T[]) (ds: 'T[]) (at: int) (bins: int) (inverse: bool) (v: 'T) =
        let k = binOf (if inverse then yk else xk) at bins v
        let i = at + k
        let x0, w, y0, h = xk[i], xk[i + 1] - xk[i], yk[i], yk[i + 1] - yk[i]
        let d0, d1 = ds[i], ds[i + 1]
        let s = h / w
        let raw =
            if inverse then
                let dy = v - y0
                let e = d0 + d1 - two () * s
                root (h * (s - d0) + dy * e) (h * d0 - dy * e) ('T.Zero - s * dy)
            else (v - x0) / w
        { Bin = k; X0 = x0; Width = w; Y0 = y0; Height = h; D0 = d0; D1 = d1; S = s; Raw = raw; Xi = clamp01 raw }

    // log dy/dx at ξ: 2 log s + log(δ₁ξ² + 2sξ(1−ξ) + δ₀(1−ξ)²) − 2 log(s + (δ₀ + δ₁ − 2s)ξ(1−ξ))
    let inline logDerivative<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (p: Point<'T>) =
        let xi, s = p.Xi, p.S
        let t = xi * ('T.One - xi)
        let u = 'T.One - xi
        let denominator = s + (p.D0 + p.D1 - two () * s) * t
        'T.Log(s) * two () + 'T.Log(p.D1 * (xi * xi) + two () * s * t + p.D0 * (u * u)) - 'T.Log(denominator) * two ()

    /// Values and log-derivatives for v [n] and knot rows [n, K+1]: y and log dy/dx, or with
    /// `inverse` x and log dx/dy.
    let inline forward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (v: 'T[]) (xk: 'T[]) (yk: 'T[]) (ds: 'T[]) (bound: float) (inverse: bool) =
        let n = v.Length
        let knots = if n = 0 then 0 else xk.Length / n
        let bins = knots - 1
        let b: 'T = 'T.CreateTruncating(bound)
        let mapped = CpuKernels.rent<'T> n
        let logDerivatives = CpuKernels.rent<'T> n
        for e in 0 .. n - 1 do
            let x = v[e]
            if ge x ('T.Zero - b) && le x b then
                let p = locate xk yk ds (e * knots) bins inverse x
                if inverse then
                    mapped[e] <- p.X0 + p.Xi * p.Width
                    logDerivatives[e] <- 'T.Zero - logDerivative p
                else
                    let xi, s = p.Xi, p.S
                    let t = xi * ('T.One - xi)
                    mapped[e] <- p.Y0 + p.Height * (s * (xi * xi) + p.D0 * t) / (s + (p.D0 + p.D1 - two () * s) * t)
                    logDerivatives[e] <- logDerivative p
            else
                mapped[e] <- x
                logDerivatives[e] <- 'T.Zero
        mapped, logDerivatives

    // Adjoints (ga, gb, gc) of the stable root's inputs from the adjoint g of the root r, routed as
    // the composite's `where`s route them.
    let inline rootBackward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (a: 'T) (b: 'T) (c: 'T) (r: 'T) (g: 'T) =
        let four = ('T.CreateTruncating(4.0): 'T)
        let disc = b * b - four * a * c
        let positive = gt disc 'T.Zero
        let sq = if positive then 'T.Sqrt disc else 'T.Zero
        let mutable ga, gb, gc, gsq = 'T.Zero, 'T.Zero, 'T.Zero, 'T.Zero
        if ge b 'T.Zero then
            let denominator = 'T.Zero - b - sq
            let nonZero = ne denominator 'T.Zero
            let safe = if nonZero then denominator else 'T.Zero - 'T.One
            gc <- g * two () / safe
            if nonZero then
                let gDenominator = 'T.Zero - g * r / safe
                gb <- gb - gDenominator
                gsq <- 'T.Zero - gDenominator
        else
            let twoA = a * two ()
            let nonZero = ne twoA 'T.Zero
            let safe = if nonZero then twoA else 'T.One
            gb <- gb - g / safe
            gsq <- g / safe
            if nonZero then ga <- ga - two () * g * r / safe
        if positive then
            let gDisc = gsq / (two () * sq)
            gb <- gb + gDisc * two () * b
            ga <- ga - gDisc * four * c
            gc <- gc - gDisc * four * a
        struct (ga, gb, gc)

    /// Adjoints of v [n], xKnots, yKnots and derivatives [n, K+1] from the adjoints of the mapped
    /// values and of the log-derivatives (`forward`'s outputs).
    let inline backward<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType>
        (v: 'T[]) (xk: 'T[]) (yk: 'T[]) (ds: 'T[]) (bound: float) (inverse: bool) (gOut: 'T[]) (gLog: 'T[]) =
        let n = v.Length
        let knots = if n = 0 then 0 else xk.Length / n
        let bins = knots - 1
        let b: 'T = 'T.CreateTruncating(bound)
        let one, two = 'T.One, two ()
        let gv = CpuKernels.rent<'T> n
        let gxk, gyk, gds = CpuKernels.rent<'T> xk.Length, CpuKernels.rent<'T> xk.Length, CpuKernels.rent<'T> xk.Length
        Span<'T>(gxk).Clear()
        Span<'T>(gyk).Clear()
        Span<'T>(gds).Clear()
        for e in 0 .. n - 1 do
            let x = v[e]
            if not (ge x ('T.Zero - b) && le x b) then gv[e] <- gOut[e]
            else
                let p = locate xk yk ds (e * knots) bins inverse x
                let xi, s, h, w, d0, d1 = p.Xi, p.S, p.Height, p.Width, p.D0, p.D1
                let t = xi * (one - xi)
                let u = one - xi
                let eSlope = d0 + d1 - two * s
                let denominator = s + eSlope * t
                let n2 = d1 * (xi * xi) + two * s * t + d0 * (u * u)
                // the log-derivative's adjoint (negated for the inverse, whose output is −log dy/dx)
                let gl = if inverse then 'T.Zero - gLog[e] else gLog[e]
                let mutable gs = gl * two / s
                let gN2 = gl / n2
                let mutable gDenominator = 'T.Zero - gl * two / denominator
                let mutable gd0 = gN2 * u * u
                let mutable gd1 = gN2 * xi * xi
                let mutable gXi = gN2 * (two * d1 * xi - two * d0 * u)
                let mutable gt = gN2 * two * s
                gs <- gs + gN2 * two * t
                let mutable gx0, gw, gy0, gh, gValue = 'T.Zero, 'T.Zero, 'T.Zero, 'T.Zero, 'T.Zero
                if inverse then
                    // x = x0 + ξ w
                    gx0 <- gOut[e]
                    gw <- gOut[e] * xi
                    gXi <- gXi + gOut[e] * w
                else
                    // y = y0 + h·num/den, num = sξ² + δ₀t
                    let num = s * (xi * xi) + d0 * t
                    gy0 <- gOut[e]
                    gh <- gOut[e] * num / denominator
                    let gNum = gOut[e] * h / denominator
                    gDenominator <- gDenominator - gOut[e] * h * num / denominator / denominator
                    gs <- gs + gNum * xi * xi
                    gd0 <- gd0 + gNum * t
                    gXi <- gXi + gNum * two * s * xi
                    gt <- gt + gNum * d0
                // den = s + e·t, e = δ₀ + δ₁ − 2s
                gs <- gs + gDenominator
                let mutable gSlope = gDenominator * t
                gt <- gt + gDenominator * eSlope
                gXi <- gXi + gt * (one - two * xi)
                let gRaw = if ge p.Raw 'T.Zero && le p.Raw one then gXi else 'T.Zero
                if inverse then
                    let dy = x - p.Y0
                    let qa, qb, qc = h * (s - d0) + dy * eSlope, h * d0 - dy * eSlope, 'T.Zero - s * dy
                    let struct (ga, gb, gc) = rootBackward qa qb qc p.Raw gRaw
                    // a = h(s − δ₀) + dy·e, b = h·δ₀ − dy·e, c = −s·dy
                    gh <- gh + ga * (s - d0) + gb * d0
                    gs <- gs + ga * h - gc * dy
                    gd0 <- gd0 - ga * h + gb * h
                    gSlope <- gSlope + (ga - gb) * dy
                    let gDy = (ga - gb) * eSlope - gc * s
                    gValue <- gDy
                    gy0 <- gy0 - gDy
                else
                    // ξ = (v − x0)/w
                    gValue <- gRaw / w
                    gx0 <- gx0 - gRaw / w
                    gw <- gw - gRaw * p.Raw / w
                gd0 <- gd0 + gSlope
                gd1 <- gd1 + gSlope
                gs <- gs - two * gSlope
                // s = h/w
                gh <- gh + gs / w
                gw <- gw - gs * s / w
                gv[e] <- gValue
                let i = e * knots + p.Bin
                gxk[i] <- gx0 - gw
                gxk[i + 1] <- gw
                gyk[i] <- gy0 - gh
                gyk[i + 1] <- gh
                gds[i] <- gd0
                gds[i + 1] <- gd1
        gv, gxk, gyk, gds
