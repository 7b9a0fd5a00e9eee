namespace Flows.Tensors

open System.Threading

/// Automatic differentiation drivers: VJPs (reverse mode, nestable), JVPs, gradients and Jacobians.
/// Each call opens a new nesting level with a fresh tag from a per-thread counter, so an inner
/// level always outranks the levels around it.
[<RequireQualifiedAccess>]
module Ad =

    let private counter = new ThreadLocal<int ref>(fun () -> ref 0)

    let private nextTag () =
        let c = counter.Value
        c.Value <- c.Value + 1
        c.Value

    let private unwrap (tag: int) (y: Tensor) = if y.Tag = tag then y.Inner else y

    /// Evaluates `f` at `xs` and returns its outputs and the pullback, which maps one cotangent per
    /// output to one adjoint per input. The pullback may be called many times (the graph is kept),
    /// and its results are differentiable by any enclosing level (create-graph is implicit).
    let vjpN (f: Tensor[] -> Tensor[]) (xs: Tensor[]) : Tensor[] * (Tensor[] -> Tensor[]) =
        let tag = nextTag ()
        let leaves = xs |> Array.map (fun x -> Tensor.Leaf(x, tag))
        // while f runs this level records: sweeps nested inside must not recycle adjoints it may capture
        Levels.Open <- Levels.Open + 1
        let ys = try f leaves finally Levels.Open <- Levels.Open - 1
        let pullback (cotangents: Tensor[]) =
            if cotangents.Length <> ys.Length then
                invalidArg (nameof cotangents) $"vjp: expected {ys.Length} cotangents, got {cotangents.Length}"
            Array.iter2 (fun (y: Tensor) (c: Tensor) ->
                if y.shape <> c.shape then
                    invalidArg (nameof cotangents) $"vjp: cotangent shape {Shape.show c.shape} differs from output shape {Shape.show y.shape}"
                if y.dtype <> c.dtype then
                    invalidArg (nameof cotangents) $"vjp: cotangent dtype {c.dtype} differs from output dtype {y.dtype} (shape {Shape.show y.shape})") ys cotangents
            Reverse.sweep tag ys cotangents leaves
        ys |> Array.map (unwrap tag), pullback

    /// `vjpN` for one input and one output.
    let vjp (f: Tensor -> Tensor) (x: Tensor) : Tensor * (Tensor -> Tensor) =
        let ys, pullback = vjpN (fun xs -> [| f xs[0] |]) [| x |]
        ys[0], fun v -> (pullback [| v |])[0]

    /// Value and gradients of a scalar function of several inputs.
    let fgradN (f: Tensor[] -> Tensor) (xs: Tensor[]) : Tensor * Tensor[] =
        let ys, pullback = vjpN (fun xs -> [| f xs |]) xs
        if ys[0].numel <> 1 then invalidArg (nameof f) $"grad: the function must return one element, got shape {Shape.show ys[0].shape}"
        ys[0], pullback [| ys[0].onesLike() |]

    /// `fgradN` for a function that keeps none of the tensors it computes (it only returns its
    /// value): the memory of every intermediate, forward and backward, is reused by later calls on
    /// this thread, so a training loop stops paying for fresh memory each step. Used by `Train.fit`,
    /// whose losses are pure functions of parameters and data.
    let fgradNReusing (f: Tensor[] -> Tensor) (xs: Tensor[]) : Tensor * Tensor[] =
        Backend.Cpu.BufferPool.Reusing(
            (fun () -> fgradN f xs),
            fun (value, grads) ->
                // results that an enclosing level recorded keep the memory their graph reads
                if value.isConst && grads |> Array.forall _.isConst then Array.append [| value.Raw.Storage |] (grads |> Array.map _.Raw.Storage)
                else null)

    /// Gradients of a scalar function of several inputs.
    let gradN (f: Tensor[] -> Tensor) (xs: Tensor[]) = snd (fgradN f xs)

    /// Value and gradient of a scalar function.
    let fgrad (f: Tensor -> Tensor) (x: Tensor) : Tensor * Tensor =
        let y, g = fgradN (fun xs -> f xs[0]) [| x |]
        y, g[0]

    /// Gradient of a scalar function.
    let grad (f: Tensor -> Tensor) (x: Tensor) = snd (fgrad f x)

    /// Jacobian-vector product J(x)·v, returned with f(x). Computed as the VJP of the (linear)
    /// pullback, so every op needs only its reverse rule.
    let jvp (f: Tensor -> Tensor) (x: Tensor) (v: Tensor) : Tensor * Tensor =
        if v.shape <> x.shape then invalidArg (nameof v) $"jvp: tangent shape {Shape.show v.shape} differs from input shape {Shape.show x.shape}"
        let y, pullback = vjp f x
        let _, pullbackOfPullback = vjp pullback (y.zerosLike())
        y, pullbackOfPullback v

    /// VJPs for many cotangents in one call: `probes` has a leading probe axis over f(x)'s shape
    /// ([P; ...]); the result has the same probe axis over x's shape. One forward pass is shared.
    let vjpProbes (f: Tensor -> Tensor) (x: Tensor) (probes: Tensor) : Tensor * Tensor =
        let y, pullback = vjp f x
        if probes.dim <> y.dim + 1 || probes.shape[1..] <> y.shape then
            invalidArg (nameof probes) $"vjpProbes: expected probes of shape [P; {Shape.show y.shape}], got {Shape.show probes.shape}"
        y, Tensor.stack(probes.unstack 0 |> Array.map pullback, 0)

    /// Full Jacobian with shape f(x).shape @ x.shape, one VJP per output element (for tests).
    let jacobian (f: Tensor -> Tensor) (x: Tensor) : Tensor =
        let y, pullback = vjp f x
        let n = y.numel
        let rows =
            Array.init n (fun i ->
                let e = Tensor.ofArray(Array.init n (fun j -> if i = j then 1.0 else 0.0)).cast(y.dtype).moveTo(y.device)
                (pullback (e.reshape y.shape)).reshape [| x.numel |])
        if n = 0 then Tensor.zeros(Array.append y.shape x.shape, x.dtype, x.device)
        else Tensor.stack(rows, 0).reshape(Array.append y.shape x.shape)

    /// Per-row Jacobians of a row-wise map [B; Din] -> [B; Dout]: shape [B; Dout; Din], with Dout
    /// VJPs whose cotangents select one output column in every row at once.
    let batchJacobian (f: Tensor -> Tensor) (x: Tensor) : Tensor =
        if x.dim <> 2 then invalidArg (nameof x) $"batchJacobian: expected [batch; dim] input, got {Shape.show x.shape}"
        let y, pullback = vjp f x
        if y.dim <> 2 || y.shape[0] <> x.shape[0] then
            invalidArg (nameof f) $"batchJacobian: expected [batch; dim] output with batch {x.shape[0]}, got {Shape.show y.shape}"
        let dOut = y.shape[1]
        let rows =
            Array.init dOut (fun j ->
                let e = Tensor.ofArray(Array.init dOut (fun k -> if k = j then 1.0 else 0.0)).cast(y.dtype).moveTo(y.device)
                pullback (e.unsqueeze(0).expand y.shape))
        Tensor.stack(rows, 1)
