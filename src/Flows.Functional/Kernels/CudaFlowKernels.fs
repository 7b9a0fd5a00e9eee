namespace Flows.Kernels

open System.IO
open Flows.Tensors
open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cuda

/// The flow kernels on the CUDA backend: launches of Kernels/flows.cu (embedded in this assembly),
/// which the backend compiles for each device on first use.
module internal CudaFlowKernels =

    /// flows.cu with the backend's shared header, read once.
    let source =
        lazy
            (let assembly = typeof<AdamConfig>.Assembly
             use stream = assembly.GetManifestResourceStream "Flows.Kernels.flows.cu"
             if isNull stream then invalidOp $"kernel source flows.cu is not embedded in {assembly.GetName().Name}"
             use reader = new StreamReader(stream)
             CudaKernels.source "flows.cu" (reader.ReadToEnd()))

    // the operands share the first one's device and dtype, which is a float type
    let private check (op: string) (first: RawTensor) (others: RawTensor list) =
        for o in others do
            if o.Device <> first.Device then
                invalidArg op $"{op}: expected a tensor on {first.Device}, got one on {o.Device}; move it with moveTo first"
            if o.Dtype <> first.Dtype then
                invalidArg op $"{op}: dtypes differ: {first.Dtype} {Shape.show first.Shape} and {o.Dtype} {Shape.show o.Shape}"
        if first.Dtype = Dtype.Int32 then invalidArg op $"{op}: expected a float32 or float64 tensor, got int32 {Shape.show first.Shape}"

    let private launch (on: RawTensor) (kernel: string) (n: int) (args: KernelArg list) =
        CudaKernels.launch on (source.Force()) (kernel + "_" + CudaKernels.suffix on.Dtype) (int64 n) args

    let private ptr (t: RawTensor) = KernelArg.Ptr(CudaKernels.pointer t)
    let private flag (b: bool) = KernelArg.Int(if b then 1 else 0)
    let private fresh (like: RawTensor) (shape: int[]) = CudaKernels.empty like shape like.Dtype

    let affineMap (x: RawTensor) (shift: RawTensor) (logScale: RawTensor) (inverse: bool) : RawTensor =
        check "affineMap" x [ shift; logScale ]
        let r = fresh x x.Shape
        launch x "affine_map" x.Numel [ KernelArg.Long(int64 x.Numel); flag inverse; ptr x; ptr shift; ptr logScale; ptr r ]
        r

    let adamStep (w: RawTensor) (g: RawTensor) (m: RawTensor) (v: RawTensor) (c: AdamConfig) =
        check "adam" w [ g; m; v ]
        let w2, m2, v2 = fresh w w.Shape, fresh w w.Shape, fresh w w.Shape
        // the constants of Cpu.Fused.adam, rounded to the dtype in the kernel as there
        let tiny = if w.Dtype = Dtype.Float32 then 1e-30 else 1e-290
        launch w "adam" w.Numel
            [ KernelArg.Long(int64 w.Numel); KernelArg.Double c.Beta1; KernelArg.Double c.Beta2
              KernelArg.Double(1.0 - c.Beta1); KernelArg.Double(1.0 - c.Beta2)
              KernelArg.Double(c.LearningRate / (1.0 - c.Beta1 ** float c.Step)); KernelArg.Double(1.0 - c.Beta2 ** float c.Step)
              KernelArg.Double c.Eps; KernelArg.Double(if c.Decoupled then 0.0 else c.WeightDecay)
              KernelArg.Double(if c.Decoupled then 1.0 - c.LearningRate * c.WeightDecay else 1.0); KernelArg.Double tiny
              ptr w; ptr g; ptr m; ptr v; ptr w2; ptr m2; ptr v2 ]
        w2, m2, v2

    let rationalQuadratic (v: RawTensor) (xKnots: RawTensor) (yKnots: RawTensor) (derivatives: RawTensor) (bound: float) (inverse: bool) =
        check "rationalQuadratic" v [ xKnots; yKnots; derivatives ]
        let mapped, logDerivatives = fresh v v.Shape, fresh v v.Shape
        let knots = if v.Numel = 0 then 0 else xKnots.Numel / v.Numel
        launch v "rq_spline" v.Numel
            [ KernelArg.Long(int64 v.Numel); KernelArg.Int knots; KernelArg.Double bound; flag inverse
              ptr v; ptr xKnots; ptr yKnots; ptr derivatives; ptr mapped; ptr logDerivatives ]
        mapped, logDerivatives

    let rationalQuadraticBackward (v: RawTensor) (xKnots: RawTensor) (yKnots: RawTensor) (derivatives: RawTensor) (bound: float) (inverse: bool)
                                  (valueAdjoint: RawTensor) (logDerivativeAdjoint: RawTensor) =
        check "rationalQuadraticBackward" v [ xKnots; yKnots; derivatives; valueAdjoint; logDerivativeAdjoint ]
        let gv = fresh v v.Shape
        let gx, gy, gd = fresh v xKnots.Shape, fresh v xKnots.Shape, fresh v xKnots.Shape
        let knots = if v.Numel = 0 then 0 else xKnots.Numel / v.Numel
        launch v "rq_spline_backward" v.Numel
            [ KernelArg.Long(int64 v.Numel); KernelArg.Int knots; KernelArg.Double bound; flag inverse
              ptr v; ptr xKnots; ptr yKnots; ptr derivatives; ptr valueAdjoint; ptr logDerivativeAdjoint
              ptr gv; ptr gx; ptr gy; ptr gd ]
        gv, gx, gy, gd

    let splineKnots (sizes: RawTensor) (bound: float) (minSize: float) =
        check "splineKnots" sizes []
        let bins = sizes.Shape[sizes.Rank - 1]
        let rows = if bins = 0 then 0 else sizes.Numel / bins
        let knots = fresh sizes (Array.append sizes.Shape[.. sizes.Rank - 2] [| bins + 1 |])
        launch sizes "spline_knots" rows
            [ KernelArg.Long(int64 rows); KernelArg.Int bins; KernelArg.Double bound; KernelArg.Double minSize; ptr sizes; ptr knots ]
        knots

    let splineKnotsBackward (sizes: RawTensor) (knotAdjoint: RawTensor) (bound: float) (minSize: float) =
        check "splineKnotsBackward" sizes [ knotAdjoint ]
        let bins = sizes.Shape[sizes.Rank - 1]
        let rows = if bins = 0 then 0 else sizes.Numel / bins
        let grad = fresh sizes sizes.Shape
        launch sizes "spline_knots_backward" rows
            [ KernelArg.Long(int64 rows); KernelArg.Int bins; KernelArg.Double bound; KernelArg.Double minSize; ptr sizes; ptr knotAdjoint; ptr grad ]
        grad
