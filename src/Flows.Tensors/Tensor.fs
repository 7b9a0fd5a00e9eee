namespace Flows.Tensors

open System
open System.Collections.Generic
open System.Threading
open Flows.Tensors.Backend

/// One recorded operation of a reverse-mode level: its inputs at the same level (`Parents`) and
/// the rule that maps the adjoint of its output to one adjoint contribution per parent.
[<Sealed; AllowNullLiteral>]
type internal Node(tag: int, parents: Tensor[], backward: Tensor -> Tensor[]) =
    static let mutable counter = 0L
    let id = Interlocked.Increment(&counter)
    member _.Id = id
    member _.Tag = tag
    member _.Parents = parents
    member _.Backward = backward

/// An immutable tensor. A constant holds raw storage; a differentiated tensor wraps the tensor one
/// nesting level down (its primal) together with the node that recorded it. Every derivative rule
/// is written with differentiable ops, so an outer level records the backward pass of an inner one:
/// gradients of gradients need no flag (DiffSharp's tagged design, without its recursion limits).
and [<Sealed; AllowNullLiteral>] Tensor internal (raw: RawTensor, inner: Tensor, node: Node) =

    internal new(raw: RawTensor) = Tensor(raw, null, null)

    /// Raw storage of the innermost primal.
    member internal _.Raw = raw
    member internal _.Node = node
    member internal _.Inner = inner
    member internal _.Tag = if isNull node then -1 else node.Tag

    /// Dimensions, row-major.
    member _.shape = raw.Shape
    /// Number of dimensions.
    member _.dim = raw.Rank
    /// Number of elements.
    member _.numel = raw.Numel
    /// Element type.
    member _.dtype = raw.Dtype
    /// Device of the storage.
    member _.device = raw.Device
    /// The value one differentiation level down (itself for a constant).
    member t.primal = if isNull inner then t else inner
    /// The same values with every derivative level stripped: a constant.
    member t.noDiff() : Tensor = if isNull node then t else Tensor(raw)
    /// True when no differentiation level is recorded on this tensor.
    member _.isConst = isNull node

    /// Copies the elements out as float32[] (converting float64).
    member _.toArray32() : float32[] =
        match raw.ToArray() with
        | :? (float32[]) as a -> a
        | :? (float[]) as a -> Array.map float32 a
        | :? (int[]) as a -> Array.map float32 a
        | a -> invalidOp $"unexpected storage {a.GetType().Name}"
    /// Copies the elements out as float[] (converting float32 exactly).
    member _.toArray64() : float[] =
        match raw.ToArray() with
        | :? (float32[]) as a -> Array.map float a
        | :? (float[]) as a -> a
        | :? (int[]) as a -> Array.map float a
        | a -> invalidOp $"unexpected storage {a.GetType().Name}"
    /// Copies the elements out as int[] (int32 tensors; floats are truncated).
    member _.toArrayInt() : int[] =
        match raw.ToArray() with
        | :? (int[]) as a -> a
        | :? (float32[]) as a -> Array.map int a
        | :? (float[]) as a -> Array.map int a
        | a -> invalidOp $"unexpected storage {a.GetType().Name}"
    /// The value of a one-element tensor.
    member t.toScalar() : float =
        if raw.Numel <> 1 then invalidOp $"toScalar: expected one element, got shape {Shape.show raw.Shape}"
        t.toArray64()[0]

    override t.ToString() =
        let values = t.toArray64()
        let shown = values |> Array.truncate 8 |> Array.map (fun v -> v.ToString("G6", Globalization.CultureInfo.InvariantCulture))
        let more = if values.Length > 8 then ", ..." else ""
        $"""tensor({Shape.show t.shape}, {t.dtype}, {t.device}: [{String.Join(", ", shown)}{more}])"""

    // ---------------------------------------------------------------- lifting machinery

    /// Applies a raw op across every nesting level. At the highest level present among the inputs
    /// a node is recorded whose backward asks `grads primals output adjoint needed` for the adjoints
    /// of the inputs at that level (`needed`; the rest may be null); inputs from lower levels are
    /// constants here (no perturbation confusion). One call gives every adjoint, so an op whose
    /// adjoints share work (a dense layer) computes it once.
    static member internal LiftMany(inputs: Tensor[], rawOp: RawTensor[] -> RawTensor, grads: Tensor[] -> Tensor -> Tensor -> bool[] -> Tensor[]) : Tensor =
        let mutable tag = -1
        for t in inputs do
            if t.Tag > tag then tag <- t.Tag
        if tag < 0 then Tensor(rawOp (inputs |> Array.map _.Raw))
        else
            let primals = inputs |> Array.map (fun t -> if t.Tag = tag then t.Inner else t)
            let y = Tensor.LiftMany(primals, rawOp, grads)
            let needed = inputs |> Array.map (fun t -> t.Tag = tag)
            let parents = inputs |> Array.filter (fun t -> t.Tag = tag)
            let backward (adj: Tensor) =
                let all = grads primals y adj needed
                [| for i in 0 .. inputs.Length - 1 do if needed[i] then all[i] |]
            Tensor(y.Raw, y, Node(tag, parents, backward))

    /// `LiftMany` with one adjoint rule per input: `grad primals output adjoint i`.
    static member internal Lift(inputs: Tensor[], rawOp: RawTensor[] -> RawTensor, grad: Tensor[] -> Tensor -> Tensor -> int -> Tensor) : Tensor =
        Tensor.LiftMany(inputs, rawOp, fun p y adj needed -> Array.init inputs.Length (fun i -> if needed[i] then grad p y adj i else null))

    static member internal Lift1(a: Tensor, rawOp: RawTensor -> RawTensor, grad: Tensor -> Tensor -> Tensor -> Tensor) : Tensor =
        Tensor.Lift([| a |], (fun r -> rawOp r[0]), fun p y adj _ -> grad p[0] y adj)

    /// A value computed on the innermost storage that carries no derivative (masks, indices).
    static member internal Constant(a: Tensor, rawOp: RawTensor -> RawTensor) : Tensor = Tensor(rawOp a.Raw)

    /// Checks that two operands share dtype and device; the message names the op and both shapes.
    static member internal Same(op: obj, a: Tensor, b: Tensor) : unit =
        if a.device <> b.device then
            invalidArg (string op) $"{op}: operands are on different devices: {a.device} {Shape.show a.shape} and {b.device} {Shape.show b.shape}"
        if a.dtype <> b.dtype then
            invalidArg (string op) $"{op}: dtypes differ: {a.dtype} {Shape.show a.shape} and {b.dtype} {Shape.show b.shape}"

    /// A scalar (rank-0) constant of `like`'s dtype and device.
    static member internal ScalarLike(value: float, like: Tensor) : Tensor =
        Tensor(like.Raw.Backend.Full([||], like.dtype, value))

    /// Zeros of `like`'s shape, dtype and device.
    static member internal ZerosLike(like: Tensor) : Tensor =
        Tensor(like.Raw.Backend.Full(like.shape, like.dtype, 0.0))

    // ---------------------------------------------------------------- reverse sweep

    /// Starts a new level on `x`: a leaf whose adjoint `Reverse` will report.
    static member internal Leaf(x: Tensor, tag: int) : Tensor = Tensor(x.Raw, x, Node(tag, [||], fun _ -> [||]))

    // ---------------------------------------------------------------- arithmetic

    static member internal BinaryOp(op: BinaryOp, a: Tensor, b: Tensor, gradA: Tensor -> Tensor -> Tensor -> Tensor -> Tensor, gradB: Tensor -> Tensor -> Tensor -> Tensor -> Tensor) : Tensor =
        Tensor.Same(box op, a, b)
        Tensor.Lift(
            [| a; b |],
            (fun r -> r[0].Binary(op, r[1])),
            fun p y adj i ->
                if i = 0 then (gradA p[0] p[1] y adj).sumTo p[0].shape
                else (gradB p[0] p[1] y adj).sumTo p[1].shape)

    /// Element-wise sum with broadcasting.
    static member (+)(a: Tensor, b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Add, a, b, (fun _ _ _ adj -> adj), fun _ _ _ adj -> adj)
    /// Element-wise difference with broadcasting.
    static member (-)(a: Tensor, b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Sub, a, b, (fun _ _ _ adj -> adj), fun _ _ _ adj -> -adj)
    /// Element-wise product with broadcasting.
    static member (*)(a: Tensor, b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Mul, a, b, (fun _ b _ adj -> adj * b), fun a _ _ adj -> adj * a)
    /// Element-wise quotient with broadcasting.
    static member (/)(a: Tensor, b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Div, a, b, (fun _ b _ adj -> adj / b), fun _ b y adj -> -(adj * y / b))
    /// Element-wise power a^b with broadcasting (a > 0 where b is differentiated).
    static member Pow(a: Tensor, b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Pow, a, b, (fun a b _ adj -> adj * b * Tensor.Pow(a, b - 1.0)), fun a _ y adj -> adj * y * a.log())
    /// Negation.
    static member (~-)(a: Tensor) : Tensor = a.Unary(UnaryOp.Neg, fun _ _ adj -> -adj)

    static member (+)(a: Tensor, s: float) : Tensor = a.Unary(UnaryOp.AddScalar s, fun _ _ adj -> adj)
    static member (+)(s: float, a: Tensor) : Tensor = a + s
    static member (-)(a: Tensor, s: float) : Tensor = a + (-s)
    static member (-)(s: float, a: Tensor) : Tensor = a.Unary(UnaryOp.RsubScalar s, fun _ _ adj -> -adj)
    static member (*)(a: Tensor, s: float) : Tensor = a.Unary(UnaryOp.MulScalar s, fun _ _ adj -> adj * s)
    static member (*)(s: float, a: Tensor) : Tensor = a * s
    static member (/)(a: Tensor, s: float) : Tensor = a * (1.0 / s)
    static member (/)(s: float, a: Tensor) : Tensor = a.reciprocal() * s
    /// Element-wise power with a constant exponent.
    static member Pow(a: Tensor, p: float) : Tensor = a.Unary(UnaryOp.PowScalar p, fun x _ adj -> adj * Tensor.Pow(x, p - 1.0) * p)

    // ---------------------------------------------------------------- element-wise maps

    member internal a.Unary(op: UnaryOp, grad: Tensor -> Tensor -> Tensor -> Tensor) : Tensor =
        Tensor.Lift1(a, (fun r -> r.Unary op), grad)

    member a.exp() : Tensor = a.Unary(UnaryOp.Exp, fun _ y adj -> adj * y)
    member a.log() : Tensor = a.Unary(UnaryOp.Log, fun x _ adj -> adj / x)
    member a.log1p() : Tensor = a.Unary(UnaryOp.Log1p, fun x _ adj -> adj / (x + 1.0))
    member a.expm1() : Tensor = a.Unary(UnaryOp.Expm1, fun _ y adj -> adj * (y + 1.0))
    member a.sqrt() : Tensor = a.Unary(UnaryOp.Sqrt, fun _ y adj -> adj / (y * 2.0))
    member a.abs() : Tensor = a.Unary(UnaryOp.Abs, fun x _ adj -> adj * x.sign())
    member a.tanh() : Tensor = a.Unary(UnaryOp.Tanh, fun _ y adj -> Tensor.ActivationGrad(Activation.Tanh, y, adj))
    member a.sigmoid() : Tensor = a.Unary(UnaryOp.Sigmoid, fun _ y adj -> Tensor.ActivationGrad(Activation.Sigmoid, y, adj))
    /// log(1 + exp(x)), computed without overflow.
    member a.softplus() : Tensor = a.Unary(UnaryOp.Softplus, fun _ y adj -> Tensor.ActivationGrad(Activation.Softplus, y, adj))
    member a.relu() : Tensor = a.Unary(UnaryOp.Relu, fun _ y adj -> Tensor.ActivationGrad(Activation.Relu, y, adj))
    member a.leakyRelu(slope: float) : Tensor =
        if not (slope >= 0.0) then invalidArg (nameof slope) $"leakyRelu: slope must be at least 0 (the backward reads the sign of the output), got {slope}"
        a.Unary(UnaryOp.LeakyRelu slope, fun _ y adj -> Tensor.ActivationGrad(Activation.LeakyRelu slope, y, adj))
    member a.elu(alpha: float) : Tensor =
        a.Unary(UnaryOp.Elu alpha, fun _ y adj -> Tensor.ActivationGrad(Activation.Elu alpha, y, adj))

    /// adjoint · act'(pre) from the activation's output y, fused; itself differentiable in both.
    static member internal ActivationGrad(activation: Activation, y: Tensor, adj: Tensor) : Tensor =
        Tensor.Lift(
            [| y; adj |],
            (fun r -> r[0].ActivationGrad(activation, r[1])),
            fun p _ g i ->
                let y, adj = p[0], p[1]
                if i = 1 then Tensor.ActivationGrad(activation, y, g)
                else
                    // the derivative in y of act'(pre) written as a function of y
                    match activation with
                    | Activation.Identity | Activation.Relu | Activation.LeakyRelu _ -> g.ZerosLikeInternal()
                    | Activation.Tanh -> g * adj * y * -2.0
                    | Activation.Sigmoid -> g * adj * (1.0 - y * 2.0)
                    | Activation.Softplus -> g * adj * (-y).exp()
                    | Activation.Elu _ -> g * adj * (1.0 - Tensor.Constant(y, fun r -> r.Unary UnaryOp.Step)))

    member internal t.ZerosLikeInternal() : Tensor = Tensor.ZerosLike t

    /// act(x · weightᵀ + bias) in one fused op, for x [n; in], weight [out; in], bias [out]. The
    /// backward forms adj · act' once and shares it among the three adjoints.
    static member dense(x: Tensor, weight: Tensor, bias: Tensor, activation: Activation) : Tensor =
        Tensor.Same("dense", x, weight)
        Tensor.Same("dense", x, bias)
        if not (x.dim = 2 && weight.dim = 2 && bias.dim = 1 && weight.shape[1] = x.shape[1] && bias.shape[0] = weight.shape[0]) then Shape.fail "dense" ($"expected x [n; in], weight [out; in], bias [out], got {Shape.show x.shape}, {Shape.show weight.shape}, {Shape.show bias.shape}")
        Tensor.LiftMany(
            [| x; weight; bias |],
            (fun r -> r[0].Dense(r[1], r[2], activation)),
            fun p y adj needed ->
                let fresh = activation <> Activation.Identity
                let pre = if fresh then Tensor.ActivationGrad(activation, y, adj) else adj
                let adjoints =
                    [| (if needed[0] then Tensor.MatMulT(pre, p[1], false, false) else null)
                       (if needed[1] then Tensor.MatMulT(pre, p[0], true, false) else null)
                       (if needed[2] then pre.sum(0) else null) |]
                // pre is dead now unless a graph captured it (then some adjoint is not constant);
                // the pool takes it only if a recycling sweep rented it
                if fresh && pre.isConst && adjoints |> Array.forall (fun a -> isNull a || a.isConst) then
                    Backend.Cpu.BufferPool.Return pre.Raw.Storage
                adjoints)

    member a.sin() : Tensor = a.Unary(UnaryOp.Sin, fun x _ adj -> adj * x.cos())
    member a.cos() : Tensor = a.Unary(UnaryOp.Cos, fun x _ adj -> -(adj * x.sin()))
    member a.atan() : Tensor = a.Unary(UnaryOp.Atan, fun x _ adj -> adj / (x * x + 1.0))
    member a.square() : Tensor = a.Unary(UnaryOp.Square, fun x _ adj -> adj * x * 2.0)
    member a.reciprocal() : Tensor = a.Unary(UnaryOp.Reciprocal, fun _ y adj -> -(adj * y * y))
    /// Clamps into [low, high]; the gradient passes only where the input was inside.
    member a.clamp(low: float, high: float) : Tensor =
        a.Unary(UnaryOp.Clamp(low, high), fun x _ adj -> adj * Tensor.Constant(x, fun r -> r.Unary(UnaryOp.InRange(low, high))))
    /// Sign (-1, 0, 1); no derivative.
    member a.sign() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.Sign)
    member a.floor() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.Floor)
    member a.ceil() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.Ceil)
    member a.round() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.Round)
    /// 1 where NaN, else 0.
    member a.isnan() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.IsNan)
    /// 1 where infinite, else 0.
    member a.isinf() : Tensor = Tensor.Constant(a, fun r -> r.Unary UnaryOp.IsInf)

    /// Element-wise maximum; ties send the gradient to `a`.
    member a.max(b: Tensor) : Tensor =
        let mask (x: Tensor) (y: Tensor) = Tensor.Constant(x, fun r -> r.Binary(BinaryOp.Ge, y.Raw))
        Tensor.BinaryOp(BinaryOp.Max, a, b, (fun x y _ adj -> adj * mask x y), fun x y _ adj -> adj * (1.0 - mask x y))
    /// Element-wise minimum; ties send the gradient to `a`.
    member a.min(b: Tensor) : Tensor =
        let mask (x: Tensor) (y: Tensor) = Tensor.Constant(x, fun r -> r.Binary(BinaryOp.Le, y.Raw))
        Tensor.BinaryOp(BinaryOp.Min, a, b, (fun x y _ adj -> adj * mask x y), fun x y _ adj -> adj * (1.0 - mask x y))
    /// atan2(a, b), the angle of the point (b, a).
    member a.atan2(b: Tensor) : Tensor =
        Tensor.BinaryOp(BinaryOp.Atan2, a, b, (fun y x _ adj -> adj * x / (x * x + y * y)), fun y x _ adj -> -(adj * y / (x * x + y * y)))

    member internal a.Compare(op: BinaryOp, b: Tensor) : Tensor =
        Tensor.Same(box op, a, b)
        Tensor(a.Raw.Binary(op, b.Raw))
    /// 1 where a < b, else 0 (no derivative; broadcasting).
    member a.lt(b: Tensor) : Tensor = a.Compare(BinaryOp.Lt, b)
    member a.gt(b: Tensor) : Tensor = a.Compare(BinaryOp.Gt, b)
    member a.le(b: Tensor) : Tensor = a.Compare(BinaryOp.Le, b)
    member a.ge(b: Tensor) : Tensor = a.Compare(BinaryOp.Ge, b)
    member a.eq(b: Tensor) : Tensor = a.Compare(BinaryOp.Eq, b)
    member a.ne(b: Tensor) : Tensor = a.Compare(BinaryOp.Ne, b)

    /// `a` where `condition` is non-zero, else `b`; the adjoint is routed by the same mask.
    /// Both branches are evaluated: sanitise the input of an unsafe branch first.
    static member where(condition: Tensor, a: Tensor, b: Tensor) : Tensor =
        Tensor.Same("where", a, b)
        Tensor.Same("where", condition, a)
        let c = condition.noDiff()
        let zero = Tensor.ScalarLike(0.0, a)
        Tensor.Lift(
            [| a; b |],
            (fun r -> r[0].Where(c.Raw, r[1])),
            fun p _ adj i ->
                if i = 0 then (Tensor.where(c, adj, zero)).sumTo p[0].shape
                else (Tensor.where(c, zero, adj)).sumTo p[1].shape)

    // ---------------------------------------------------------------- reductions

    /// Sum of all elements (a scalar).
    member a.sum() : Tensor = a.reshape([| a.numel |]).sum(0)
    /// Sum along `dim` (negative counts from the end).
    member a.sum(dim: int, ?keepDim: bool) : Tensor =
        let keepDim = defaultArg keepDim false
        let d = Shape.dim "sum" a.dim dim
        let shape = a.shape
        Tensor.Lift1(a, (fun r -> r.Reduce(ReduceOp.Sum, d, keepDim)), fun _ _ adj ->
            (if keepDim then adj else adj.unsqueeze d).expand shape)
    /// Sums down to `shape`, a shape that broadcasts to this one (the adjoint of broadcasting).
    member a.sumTo(shape: int[]) : Tensor =
        if a.shape = shape then a
        else
            if not (Shape.broadcastsTo shape a.shape) then Shape.fail "sumTo" ($"{Shape.show shape} does not broadcast to {Shape.show a.shape}")
            let from = a.shape
            Tensor.Lift1(a, (fun r -> r.SumTo shape), fun _ _ adj -> adj.expand from)
    /// Broadcasts to a larger shape.
    member a.expand(shape: int[]) : Tensor =
        if a.shape = shape then a
        else
            if not (Shape.broadcastsTo a.shape shape) then Shape.fail "expand" ($"{Shape.show a.shape} does not broadcast to {Shape.show shape}")
            let from = a.shape
            Tensor.Lift1(a, (fun r -> r.Expand shape), fun _ _ adj -> adj.sumTo from)
    member internal a.Extreme(op: ReduceOp, argOp: ReduceOp, dim: int, keepDim: bool) : Tensor =
        let d = Shape.dim "max/min" a.dim dim
        let shape = a.shape
        Tensor.Lift1(a, (fun r -> r.Reduce(op, d, keepDim)), fun x _ adj ->
            let index = Tensor.Constant(x, fun r -> r.Reduce(argOp, d, true))
            (if keepDim then adj else adj.unsqueeze d).scatterAdd(d, index, shape))
    /// Maximum along `dim`; the gradient goes to the first maximal element.
    member a.max(dim: int, ?keepDim: bool) : Tensor = a.Extreme(ReduceOp.Max, ReduceOp.ArgMax, dim, defaultArg keepDim false)
    /// Minimum along `dim`; the gradient goes to the first minimal element.
    member a.min(dim: int, ?keepDim: bool) : Tensor = a.Extreme(ReduceOp.Min, ReduceOp.ArgMin, dim, defaultArg keepDim false)
    /// Largest element (a scalar).
    member a.max() : Tensor = a.reshape([| a.numel |]).max(0)
    /// Smallest element (a scalar).
    member a.min() : Tensor = a.reshape([| a.numel |]).min(0)
    /// Index of the maximum along `dim` (int32, no derivative).
    member a.argmax(dim: int, ?keepDim: bool) : Tensor =
        let d = Shape.dim "argmax" a.dim dim
        Tensor.Constant(a, fun r -> r.Reduce(ReduceOp.ArgMax, d, defaultArg keepDim false))
    /// Index of the minimum along `dim` (int32, no derivative).
    member a.argmin(dim: int, ?keepDim: bool) : Tensor =
        let d = Shape.dim "argmin" a.dim dim
        Tensor.Constant(a, fun r -> r.Reduce(ReduceOp.ArgMin, d, defaultArg keepDim false))
    /// Inclusive prefix sum along `dim`; from the end when `reverse`.
    member a.cumsum(dim: int, ?reverse: bool) : Tensor =
        let reverse = defaultArg reverse false
        let d = Shape.dim "cumsum" a.dim dim
        Tensor.Lift1(a, (fun r -> r.Cumsum(d, reverse)), fun _ _ adj -> adj.cumsum(d, not reverse))

    // ---------------------------------------------------------------- shape

    /// Same elements, another shape; one dimension may be -1.
    member a.reshape(shape: int[]) : Tensor =
        let target = Shape.resolveView "reshape" a.numel shape
        if target = a.shape then a
        else
            let from = a.shape
            Tensor.Lift1(a, (fun r -> r.Reshape target), fun _ _ adj -> adj.reshape from)
    /// DiffSharp's name for reshape.
    member a.view(shape: int[]) : Tensor = a.reshape shape
    /// Inserts a dimension of size 1 at `dim`.
    member a.unsqueeze(dim: int) : Tensor =
        let d = Shape.dim "unsqueeze" (a.dim + 1) dim
        a.reshape(Array.insertAt d 1 a.shape)
    /// Removes dimension `dim`, which must have size 1.
    member a.squeeze(dim: int) : Tensor =
        let d = Shape.dim "squeeze" a.dim dim
        if not (a.shape[d] = 1) then Shape.fail "squeeze" ($"dimension {dim} of {Shape.show a.shape} is not 1")
        a.reshape(Array.removeAt d a.shape)
    /// Reorders dimensions: result dimension i is dimension `dims[i]` of this tensor.
    member a.permute(dims: int[]) : Tensor =
        if not (Array.sort dims = Array.init a.dim id) then Shape.fail "permute" ($"{Shape.show dims} is not a permutation of the {a.dim} dimensions of {Shape.show a.shape}")
        if dims = Array.init a.dim id then a
        else
            let inverse = Array.zeroCreate dims.Length
            dims |> Array.iteri (fun i d -> inverse[d] <- i)
            Tensor.Lift1(a, (fun r -> r.Permute dims), fun _ _ adj -> adj.permute inverse)
    /// Swaps two dimensions.
    member a.transpose(dim0: int, dim1: int) : Tensor =
        let d0, d1 = Shape.dim "transpose" a.dim dim0, Shape.dim "transpose" a.dim dim1
        a.permute(Array.init a.dim (fun i -> if i = d0 then d1 elif i = d1 then d0 else i))
    /// Swaps the last two dimensions.
    member a.transpose() : Tensor = a.transpose(-2, -1)
    /// The `length` elements from `start` along `dim`.
    member a.narrow(dim: int, start: int, length: int) : Tensor =
        let d = Shape.dim "narrow" a.dim dim
        if not (start >= 0 && length >= 0 && start + length <= a.shape[d]) then Shape.fail "narrow" ($"[{start}, {start + length}) is outside dimension {dim} of {Shape.show a.shape}")
        let starts = Array.init a.dim (fun i -> if i = d then start else 0)
        let lengths = Array.mapi (fun i n -> if i = d then length else n) a.shape
        a.slice(starts, lengths)
    /// The box starting at `starts` with sizes `lengths`.
    member a.slice(starts: int[], lengths: int[]) : Tensor =
        if not (starts.Length = a.dim && lengths.Length = a.dim) then Shape.fail "slice" ($"expected {a.dim} starts and lengths for {Shape.show a.shape}")
        if not (Array.forall2 (fun (s, l) n -> s >= 0 && l >= 0 && s + l <= n) (Array.zip starts lengths) a.shape) then Shape.fail "slice" ($"box at {Shape.show starts} of size {Shape.show lengths} is outside {Shape.show a.shape}")
        if lengths = a.shape then a
        else
            let after = Array.init a.dim (fun i -> a.shape[i] - starts[i] - lengths[i])
            Tensor.Lift1(a, (fun r -> r.Slice(starts, lengths)), fun _ _ adj -> adj.pad(starts, after))
    /// Surrounds with a constant: `before[i]` and `after[i]` elements along dimension i.
    member a.pad(before: int[], after: int[], ?value: float) : Tensor =
        let value = defaultArg value 0.0
        if not (before.Length = a.dim && after.Length = a.dim) then Shape.fail "pad" ($"expected {a.dim} pad widths for {Shape.show a.shape}")
        if not (Array.forall (fun w -> w >= 0) (Array.append before after)) then Shape.fail "pad" ("pad widths must be non-negative")
        Tensor.Lift1(a, (fun r -> r.Pad(before, after, value)), fun _ _ adj -> adj.slice(before, a.shape))
    /// Reverses the order along the given dimensions.
    member a.flip(dims: int[]) : Tensor =
        let ds = dims |> Array.map (Shape.dim "flip" a.dim)
        if not (Array.distinct ds = ds) then Shape.fail "flip" ($"dimensions {Shape.show dims} repeat for a tensor of shape {Shape.show a.shape}")
        Tensor.Lift1(a, (fun r -> r.Flip ds), fun _ _ adj -> adj.flip ds)
    /// Keeps the lower triangle from diagonal `k` on (batched over leading dimensions).
    member a.tril(?k: int) : Tensor =
        let k = defaultArg k 0
        if not (a.dim >= 2) then Shape.fail "tril" ($"expected matrices [..., rows, cols], got {Shape.show a.shape}")
        Tensor.Lift1(a, (fun r -> r.Triangle(true, k)), fun _ _ adj -> adj.tril k)
    /// Keeps the upper triangle from diagonal `k` on (batched over leading dimensions).
    member a.triu(?k: int) : Tensor =
        let k = defaultArg k 0
        if not (a.dim >= 2) then Shape.fail "triu" ($"expected matrices [..., rows, cols], got {Shape.show a.shape}")
        Tensor.Lift1(a, (fun r -> r.Triangle(false, k)), fun _ _ adj -> adj.triu k)

    /// Concatenates along `dim` tensors that agree elsewhere.
    static member cat(tensors: Tensor[], ?dim: int) : Tensor =
        if not (tensors.Length > 0) then Shape.fail "cat" ("needs at least one tensor")
        let first = tensors[0]
        let d = Shape.dim "cat" first.dim (defaultArg dim 0)
        for t in tensors do
            Tensor.Same("cat", first, t)
            if not (t.dim = first.dim && Array.forall2 (fun (i, x) y -> i = d || x = y) (Array.indexed t.shape) first.shape) then Shape.fail "cat" ($"shapes {Shape.show first.shape} and {Shape.show t.shape} differ outside dimension {d}")
        if tensors.Length = 1 then first
        else
            let offsets = tensors |> Array.scan (fun acc t -> acc + t.shape[d]) 0
            Tensor.Lift(tensors, (fun r -> r[0].Backend.Cat(r, d)), fun _ _ adj i -> adj.narrow(d, offsets[i], tensors[i].shape[d]))
    /// Stacks equally shaped tensors along a new dimension.
    static member stack(tensors: Tensor[], ?dim: int) : Tensor =
        let d = defaultArg dim 0
        Tensor.cat(tensors |> Array.map (fun t -> t.unsqueeze d), d)
    /// Splits along `dim` into pieces of the given sizes.
    member a.split(sizes: int[], ?dim: int) =
        let d = Shape.dim "split" a.dim (defaultArg dim 0)
        if not (Array.sum sizes = a.shape[d]) then Shape.fail "split" ($"sizes {Shape.show sizes} do not add up to dimension {d} of {Shape.show a.shape}")
        let offsets = Array.scan (+) 0 sizes
        sizes |> Array.mapi (fun i n -> a.narrow(d, offsets[i], n))
    /// The slices along `dim`, each without that dimension.
    member a.unstack(?dim: int) =
        let d = Shape.dim "unstack" a.dim (defaultArg dim 0)
        Array.init a.shape[d] (fun i -> a.narrow(d, i, 1).squeeze d)

    // ---------------------------------------------------------------- indexing

    /// result[..i..] = this[..index[..i..]..] along `dim`; the backward adds up repeated indices.
    member a.gather(dim: int, index: Tensor) : Tensor =
        let d = Shape.dim "gather" a.dim dim
        if not (index.dtype = Dtype.Int32) then Shape.fail "gather" ($"index must be int32, got {index.dtype}")
        if not (index.dim = a.dim && Array.forall2 (fun (i, n) m -> i = d || n = m) (Array.indexed index.shape) a.shape) then Shape.fail "gather" ($"index shape {Shape.show index.shape} must match {Shape.show a.shape} outside dimension {d}")
        let shape = a.shape
        let idx = index.noDiff()
        Tensor.Lift1(a, (fun r -> r.Gather(d, idx.Raw)), fun _ _ adj -> adj.scatterAdd(d, idx, shape))
    /// A zero tensor of `shape` with this tensor added at `index` along `dim`.
    member a.scatterAdd(dim: int, index: Tensor, shape: int[]) : Tensor =
        let d = Shape.dim "scatterAdd" a.dim dim
        if not (index.shape = a.shape) then Shape.fail "scatterAdd" ($"index shape {Shape.show index.shape} must equal source shape {Shape.show a.shape}")
        if not (shape.Length = a.dim && Array.forall2 (fun (i, n) m -> i = d || n = m) (Array.indexed shape) a.shape) then Shape.fail "scatterAdd" ($"target shape {Shape.show shape} must match source shape {Shape.show a.shape} outside dimension {d}")
        let idx = index.noDiff()
        Tensor.Lift1(a, (fun r -> r.ScatterAdd(d, idx.Raw, shape)), fun _ _ adj -> adj.gather(d, idx))

    // ---------------------------------------------------------------- linear algebra

    /// Batched op(a) x op(b) with broadcast batch dimensions.
    static member internal MatMulT(a: Tensor, b: Tensor, ta: bool, tb: bool) : Tensor =
        Tensor.Same("matmul", a, b)
        Shape.matmul a.shape b.shape ta tb |> ignore
        Tensor.Lift(
            [| a; b |],
            (fun r -> r[0].MatMul(r[1], ta, tb)),
            fun p _ adj i ->
                let x, y = p[0], p[1]
                if i = 0 then
                    (if ta then Tensor.MatMulT(y, adj, tb, true) else Tensor.MatMulT(adj, y, false, not tb)).sumTo x.shape
                else
                    (if tb then Tensor.MatMulT(adj, x, true, ta) else Tensor.MatMulT(x, adj, not ta, false)).sumTo y.shape)
    /// Matrix product; 1-D operands are treated as a row (left) or a column (right) and dropped after.
    member a.matmul(b: Tensor) : Tensor =
        match a.dim, b.dim with
        | 1, 1 -> Tensor.MatMulT(a.unsqueeze 0, b.unsqueeze 1, false, false).reshape [||]
        | 1, _ -> Tensor.MatMulT(a.unsqueeze 0, b, false, false).squeeze -2
        | _, 1 -> Tensor.MatMulT(a, b.unsqueeze 1, false, false).squeeze -1
        | _ -> Tensor.MatMulT(a, b, false, false)
