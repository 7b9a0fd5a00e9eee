namespace Flows.Kernels

open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu
open Flows.Kernels.Cpu

/// The flow kernels on the CPU backend: each picks the dtype's instance of the generic code in
/// Kernels/Cpu and wraps the arrays it fills as tensors without a copy.
module internal CpuFlowKernels =

    let private floats (op: string) (t: RawTensor) =
        if t.Dtype = Dtype.Int32 then invalidArg op $"{op}: expected float operands, got int32 {Shape.show t.Shape}"
        t.Dtype = Dtype.Float32

    let affineMap (x: RawTensor) (shift: RawTensor) (logScale: RawTensor) (inverse: bool) : RawTensor =
        let op = "affineMap"
        if floats op x then
            let e = CpuKernels.elements<float32> op
            CpuKernels.tensor (Fused.affineMap (e x) (e shift) (e logScale) inverse) x.Shape
        else
            let e = CpuKernels.elements<float> op
            CpuKernels.tensor (Fused.affineMap (e x) (e shift) (e logScale) inverse) x.Shape

    let adamStep (w: RawTensor) (g: RawTensor) (m: RawTensor) (v: RawTensor) (config: AdamConfig) =
        let op = "adam"
        let wrap (w', m', v') = CpuKernels.tensor w' w.Shape, CpuKernels.tensor m' w.Shape, CpuKernels.tensor v' w.Shape
        if floats op w then
            let e = CpuKernels.elements<float32> op
            wrap (Fused.adam (e w) (e g) (e m) (e v) config)
        else
            let e = CpuKernels.elements<float> op
            wrap (Fused.adam (e w) (e g) (e m) (e v) config)

    let rationalQuadratic (v: RawTensor) (xKnots: RawTensor) (yKnots: RawTensor) (derivatives: RawTensor) (bound: float) (inverse: bool) =
        let op = "rationalQuadratic"
        let wrap (mapped, logDerivatives) = CpuKernels.tensor mapped v.Shape, CpuKernels.tensor logDerivatives v.Shape
        if floats op v then
            let e = CpuKernels.elements<float32> op
            wrap (Spline.forward (e v) (e xKnots) (e yKnots) (e derivatives) bound inverse)
        else
            let e = CpuKernels.elements<float> op
            wrap (Spline.forward (e v) (e xKnots) (e yKnots) (e derivatives) bound inverse)

    let rationalQuadraticBackward (v: RawTensor) (xKnots: RawTensor) (yKnots: RawTensor) (derivatives: RawTensor) (bound: float) (inverse: bool)
                                  (valueAdjoint: RawTensor) (logDerivativeAdjoint: RawTensor) =
        let op = "rationalQuadraticBackward"
        let wrap (gv, gx, gy, gd) =
            CpuKernels.tensor gv v.Shape, CpuKernels.tensor gx xKnots.Shape, CpuKernels.tensor gy xKnots.Shape, CpuKernels.tensor gd xKnots.Shape
        if floats op v then
            let e = CpuKernels.elements<float32> op
            wrap (Spline.backward (e v) (e xKnots) (e yKnots) (e derivatives) bound inverse (e valueAdjoint) (e logDerivativeAdjoint))
        else
            let e = CpuKernels.elements<float> op
            wrap (Spline.backward (e v) (e xKnots) (e yKnots) (e derivatives) bound inverse (e valueAdjoint) (e logDerivativeAdjoint))

    let splineKnots (sizes: RawTensor) (bound: float) (minSize: float) =
        let op = "splineKnots"
        let bins = sizes.Shape[sizes.Rank - 1]
        let knotShape = Array.append sizes.Shape[.. sizes.Rank - 2] [| bins + 1 |]
        if floats op sizes then CpuKernels.tensor (Knots.forward (CpuKernels.elements<float32> op sizes) bins bound minSize) knotShape
        else CpuKernels.tensor (Knots.forward (CpuKernels.elements<float> op sizes) bins bound minSize) knotShape

    let splineKnotsBackward (sizes: RawTensor) (knotAdjoint: RawTensor) (bound: float) (minSize: float) =
        let op = "splineKnotsBackward"
        let bins = sizes.Shape[sizes.Rank - 1]
        if floats op sizes then
            let e = CpuKernels.elements<float32> op
            CpuKernels.tensor (Knots.backward (e sizes) bins bound minSize (e knotAdjoint)) sizes.Shape
        else
            let e = CpuKernels.elements<float> op
            CpuKernels.tensor (Knots.backward (e sizes) bins bound minSize (e knotAdjoint)) sizes.Shape
