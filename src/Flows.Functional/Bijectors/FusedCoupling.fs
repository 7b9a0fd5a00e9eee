/// The affine and additive coupling layers with an MLP conditioner as one fused primitive (see
/// `Tensor.fused`): the column split, the dense layers, the transformer, the log-determinant and the
/// merge run as raw ops forward, and their hand-written backward runs in one node. A small flow's
/// step was mostly the bookkeeping of the twenty-odd recorded ops per layer, not their arithmetic.
module internal Flows.Bijectors.FusedCoupling

open Flows.Tensors
open Flows.Tensors.Backend

/// What the conditioner's outputs do: shift only, or shift then raw log-scale.
type Head =
    | Additive
    /// The log-scale map of the raw scale and, unless it is the identity, its derivative.
    | Affine of map: (RawTensor -> RawTensor) * slope: (RawTensor -> RawTensor) option

/// RealNVP's log-scale s itself.
let exp = Affine(id, None)

/// FrEIA's soft clamp c·(2/π)·atan(s/c), with slope (2/π)/(1 + (s/c)²).
let softClamp (c: float) =
    let scaled (s: RawTensor) = s.Unary(UnaryOp.MulScalar(1.0 / c))
    Affine(
        (fun s -> (scaled s).Unary(UnaryOp.Atan).Unary(UnaryOp.MulScalar(c * 2.0 / System.Math.PI))),
        Some(fun s -> (scaled s).Unary(UnaryOp.Square).Unary(UnaryOp.AddScalar 1.0).Unary(UnaryOp.Reciprocal).Unary(UnaryOp.MulScalar(2.0 / System.Math.PI))))

/// Glow's contracting map −log σ(s + 2) = softplus(−(s + 2)), with slope −σ(−(s + 2)).
let contracting =
    let negated (s: RawTensor) = s.Unary(UnaryOp.AddScalar 2.0).Unary UnaryOp.Neg
    Affine((fun s -> (negated s).Unary UnaryOp.Softplus), Some(fun s -> (negated s).Unary(UnaryOp.Sigmoid).Unary UnaryOp.Neg))

/// The column order that puts the columns A then B back in feature order, or None where they
/// already are.
let mergeOrder (a: int[]) (b: int[]) =
    let order = Array.append a b
    if order = Array.init order.Length id then None
    else
        let inverse = Array.zeroCreate order.Length
        order |> Array.iteri (fun i o -> inverse[o] <- i)
        Some inverse

/// One coupling layer's fixed structure.
type Plan =
    { A: int[]
      B: int[]
      /// `mergeOrder A B`, found once.
      Merge: int[] option
      Activation: Activation
      Depth: int
      Head: Head
      HasContext: bool }

// The columns idx of rows x, as a contiguous tensor.
let private columns (idx: int[]) (x: RawTensor) =
    let n = x.Shape[0]
    if idx = Array.init idx.Length (fun i -> idx[0] + i) then x.Slice([| 0; idx[0] |], [| n; idx.Length |])
    else x.Gather(1, x.Backend.OfArray(idx, [| 1; idx.Length |]).Expand [| n; idx.Length |])

// Columns A then B back in feature order.
let private merge (plan: Plan) (xa: RawTensor) (xb: RawTensor) =
    let joined = xa.Backend.Cat([| xa; xb |], 1)
    match plan.Merge with
    | Some order -> columns order joined
    | None -> joined

/// Forward (base → data) or, with `inverse`, inverse of the layer on raw inputs
/// [x; context (when the plan has one); weight 0; bias 0; ...]: outputs [y; log|det J| per row].
let run (plan: Plan) (inverse: bool) : FusedForward =
    fun raws ->
        let x = raws[0]
        let first = if plan.HasContext then 2 else 1
        let weight l = raws[first + 2 * l]
        let n, nb = x.Shape[0], plan.B.Length
        let xa, xb = columns plan.A x, columns plan.B x
        // hs[l] is the input of dense layer l (after its activation); hs[Depth] the raw parameters
        let hs = Array.zeroCreate (plan.Depth + 1)
        hs[0] <- if plan.HasContext then x.Backend.Cat([| xa; raws[1] |], 1) else xa
        for l in 0 .. plan.Depth - 1 do
            let activation = if l < plan.Depth - 1 then plan.Activation else Activation.Identity
            hs[l + 1] <- hs[l].Dense(weight l, raws[first + 2 * l + 1], activation)
        let out = hs[plan.Depth]
        let shift = out.Slice([| 0; 0 |], [| n; nb |])
        // the raw and mapped log-scales of an affine head
        let scales, yb, logDet =
            match plan.Head with
            | Additive ->
                None, xb.Binary((if inverse then BinaryOp.Sub else BinaryOp.Add), shift), x.Backend.Full([| n |], x.Dtype, 0.0)
            | Affine(map, _) ->
                let rawScale = out.Slice([| 0; nb |], [| n; nb |])
                let logScale = map rawScale
                let sum = logScale.Reduce(ReduceOp.Sum, 1, false)
                Some(rawScale, logScale), xb.AffineMap(shift, logScale, inverse), (if inverse then sum.Unary UnaryOp.Neg else sum)
        let backward (needed: bool[]) (adjoints: RawTensor[]) =
            let gy, gLogDet = adjoints[0], adjoints[1].Reshape [| n; 1 |]
            let gyb = columns plan.B gy
            // adjoints of the transformed inputs, the shift and the raw log-scale
            let gxb, gShift, gRaw =
                match plan.Head, scales with
                | Affine(_, slope), Some(rawScale, logScale) ->
                    let scale = (if inverse then logScale.Unary UnaryOp.Neg else logScale).Unary UnaryOp.Exp
                    let gxb = gyb.Binary(BinaryOp.Mul, scale)
                    // forward: y = x·e^s + t, d/ds = (y − t)·adj + adjLogDet; inverse: x = (y − t)·e^−s, d/ds = −x·adj − adjLogDet
                    let gLogScale =
                        if inverse then gyb.Binary(BinaryOp.Mul, yb).Binary(BinaryOp.Add, gLogDet).Unary UnaryOp.Neg
                        else gyb.Binary(BinaryOp.Mul, yb.Binary(BinaryOp.Sub, shift)).Binary(BinaryOp.Add, gLogDet)
                    let gRaw = match slope with Some f -> gLogScale.Binary(BinaryOp.Mul, f rawScale) | None -> gLogScale
                    gxb, (if inverse then gxb.Unary UnaryOp.Neg else gyb), Some gRaw
                | _ -> gyb, (if inverse then gyb.Unary UnaryOp.Neg else gyb), None
            let mutable gOut = match gRaw with Some g -> x.Backend.Cat([| gShift; g |], 1) | None -> gShift
            let grads: RawTensor[] = Array.zeroCreate raws.Length
            let inputNeeded = needed[0] || (plan.HasContext && needed[1])
            for l in plan.Depth - 1 .. -1 .. 0 do
                let w, b = first + 2 * l, first + 2 * l + 1
                if needed[w] then grads[w] <- gOut.MatMul(hs[l], true, false)
                if needed[b] then grads[b] <- gOut.Reduce(ReduceOp.Sum, 0, false)
                if l > 0 || inputNeeded then
                    let gIn = gOut.MatMul(weight l, false, false)
                    gOut <- if l > 0 then hs[l].ActivationGrad(plan.Activation, gIn) else gIn
            let na = plan.A.Length
            if needed[0] then
                let gxa = (columns plan.A gy).Binary(BinaryOp.Add, gOut.Slice([| 0; 0 |], [| n; na |]))
                grads[0] <- merge plan gxa gxb
            if plan.HasContext && needed[1] then grads[1] <- gOut.Slice([| 0; na |], [| n; gOut.Shape[1] - na |])
            grads
        [| merge plan xa yb; logDet |], backward
