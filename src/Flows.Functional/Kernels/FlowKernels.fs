namespace Flows.Tensors

open Flows.Tensors.Backend
open Flows.Kernels

/// The fused kernels of flows (affine transformer, Adam, rational-quadratic spline, spline knots),
/// registered with Flows.Tensors' kernel registry for CPU and CUDA the first time one is used,
/// and called as members of RawTensor and Tensor wherever Flows.Tensors is open.
[<AutoOpen>]
module FlowKernels =

    let private registered =
        lazy
            (let both name cpu cuda =
                Kernels.register name "cpu" cpu
                Kernels.register name "cuda" cuda
             both "affineMap" CpuFlowKernels.affineMap CudaFlowKernels.affineMap
             both "adamStep" CpuFlowKernels.adamStep CudaFlowKernels.adamStep
             both "rationalQuadratic" CpuFlowKernels.rationalQuadratic CudaFlowKernels.rationalQuadratic
             both "rationalQuadraticBackward" CpuFlowKernels.rationalQuadraticBackward CudaFlowKernels.rationalQuadraticBackward
             both "splineKnots" CpuFlowKernels.splineKnots CudaFlowKernels.splineKnots
             both "splineKnotsBackward" CpuFlowKernels.splineKnotsBackward CudaFlowKernels.splineKnotsBackward)

    // every use goes through here, so the kernels are registered before the first lookup
    let private kernel<'F> (name: string) (device: Device) : 'F =
        registered.Force()
        Kernels.find<'F> name device

    type RawTensor with
        /// Element-wise this·exp(logScale) + shift, or with `inverse` (this − shift)·exp(−logScale), equal shapes.
        member t.AffineMap(shift: RawTensor, logScale: RawTensor, inverse: bool) : RawTensor =
            kernel "affineMap" t.Device t shift logScale inverse

        /// One fused Adam step on weights (this): the new weights and first and second moments.
        member t.AdamStep(grad: RawTensor, m: RawTensor, v: RawTensor, config: AdamConfig) : RawTensor * RawTensor * RawTensor =
            kernel "adamStep" t.Device t grad m v config

        /// The monotone rational-quadratic spline at each value of this tensor [..., d], given its knots
        /// xKnots, yKnots and knot derivatives [..., d, K+1] (or its inverse): the mapped values and the
        /// log-derivatives [..., d]; the identity with log-derivative 0 outside [−bound, bound].
        member t.RationalQuadratic(xKnots: RawTensor, yKnots: RawTensor, derivatives: RawTensor, bound: float, inverse: bool) : RawTensor * RawTensor =
            kernel "rationalQuadratic" t.Device t xKnots yKnots derivatives bound inverse

        /// The backward of `RationalQuadratic` at the same inputs, given the adjoints of its two
        /// outputs: the adjoints of this tensor, xKnots, yKnots and derivatives.
        member t.RationalQuadraticBackward(xKnots: RawTensor, yKnots: RawTensor, derivatives: RawTensor, bound: float, inverse: bool,
                                           valueAdjoint: RawTensor, logDerivativeAdjoint: RawTensor) : RawTensor * RawTensor * RawTensor * RawTensor =
            kernel "rationalQuadraticBackward" t.Device t xKnots yKnots derivatives bound inverse valueAdjoint logDerivativeAdjoint

        /// A spline's knots [..., K+1] on [−bound, bound] from unnormalised bin sizes (this) [..., K ≥ 1]:
        /// −bound, the running sum of minSize + (1 − K·minSize)·softmax in units of 2·bound, then bound.
        member t.SplineKnots(bound: float, minSize: float) : RawTensor =
            kernel "splineKnots" t.Device t bound minSize

        /// The backward of `SplineKnots` at the same sizes: the adjoint of this tensor from the knots' adjoint.
        member t.SplineKnotsBackward(knotAdjoint: RawTensor, bound: float, minSize: float) : RawTensor =
            kernel "splineKnotsBackward" t.Device t knotAdjoint bound minSize

    type Tensor with
        /// x·exp(logScale) + shift, or with `inverse` (x − shift)·exp(−logScale): the affine transformer
        /// of coupling and autoregressive layers as one op (equal shapes; otherwise composed from
        /// broadcasting ops with the same values).
        static member affineMap(x: Tensor, shift: Tensor, logScale: Tensor, inverse: bool) : Tensor =
            for name, t in [ nameof shift, shift; nameof logScale, logScale ] do
                if t.device <> x.device || t.dtype <> x.dtype then
                    invalidArg name $"affineMap: {name} is {t.dtype} on {t.device}, x is {x.dtype} on {x.device}"
            if x.shape <> shift.shape || x.shape <> logScale.shape then
                if inverse then (x - shift) * (-logScale).exp() else x * logScale.exp() + shift
            else
                Tensor.custom1(
                    [| x; shift; logScale |],
                    (fun r -> r[0].AffineMap(r[1], r[2], inverse)),
                    fun p y adj needed ->
                        let e = if inverse then (-p[2]).exp() else p[2].exp()
                        let scaled = adj * e
                        [| (if needed[0] then scaled else null)
                           (if needed[1] then (if inverse then -scaled else adj) else null)
                           (if needed[2] then (if inverse then -(adj * y) else adj * (y - p[1])) else null) |])

        /// One fused Adam/AdamW step on constants: new weights, first and second moments.
        static member adamStep(weights: Tensor, grad: Tensor, m: Tensor, v: Tensor, config: AdamConfig) =
            let w', m', v' = weights.raw.AdamStep(grad.raw, m.raw, v.raw, config)
            Tensor.ofRaw w', Tensor.ofRaw m', Tensor.ofRaw v'
