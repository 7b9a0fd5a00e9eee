namespace Flows.Tensors.Backend

/// Element-wise maps a backend implements; the scalar-parameter cases avoid building scalar tensors.
[<RequireQualifiedAccess>]
type UnaryOp =
    | Neg
    | Exp
    | Log
    | Log1p
    | Expm1
    | Sqrt
    | Abs
    | Sign
    | Tanh
    | Sigmoid
    | Softplus
    | Relu
    | Sin
    | Cos
    | Atan
    | Square
    | Reciprocal
    | Floor
    | Ceil
    | Round
    | Step  // 1 where x > 0, else 0: the mask of relu's derivative
    | IsNan
    | IsInf
    | AddScalar of float
    | MulScalar of float
    | RsubScalar of float  // s - x
    | PowScalar of float
    | LeakyRelu of float
    | Elu of float
    | Clamp of low: float * high: float
    | InRange of low: float * high: float  // 1 where low <= x <= high: the mask of clamp's derivative

    /// The case name, for error messages. Every op formats it eagerly, and the default union
    /// printing is reflection-based: it cost more than the op itself on small tensors.
    override op.ToString() =
        match op with
        | Neg -> "Neg"
        | Exp -> "Exp"
        | Log -> "Log"
        | Log1p -> "Log1p"
        | Expm1 -> "Expm1"
        | Sqrt -> "Sqrt"
        | Abs -> "Abs"
        | Sign -> "Sign"
        | Tanh -> "Tanh"
        | Sigmoid -> "Sigmoid"
        | Softplus -> "Softplus"
        | Relu -> "Relu"
        | Sin -> "Sin"
        | Cos -> "Cos"
        | Atan -> "Atan"
        | Square -> "Square"
        | Reciprocal -> "Reciprocal"
        | Floor -> "Floor"
        | Ceil -> "Ceil"
        | Round -> "Round"
        | Step -> "Step"
        | IsNan -> "IsNan"
        | IsInf -> "IsInf"
        | AddScalar s -> $"AddScalar {s}"
        | MulScalar s -> $"MulScalar {s}"
        | RsubScalar s -> $"RsubScalar {s}"
        | PowScalar p -> $"PowScalar {p}"
        | LeakyRelu a -> $"LeakyRelu {a}"
        | Elu a -> $"Elu {a}"
        | Clamp(low, high) -> $"Clamp ({low}, {high})"
        | InRange(low, high) -> $"InRange ({low}, {high})"

/// Element-wise binary maps with NumPy broadcasting; comparisons return 0/1 in the operands' dtype.
[<RequireQualifiedAccess>]
type BinaryOp =
    | Add
    | Sub
    | Mul
    | Div
    | Pow
    | Max
    | Min
    | Atan2
    | Lt
    | Gt
    | Le
    | Ge
    | Eq
    | Ne

    /// The case name, for error messages (cheap, unlike the default union printing).
    override op.ToString() =
        match op with
        | Add -> "Add"
        | Sub -> "Sub"
        | Mul -> "Mul"
        | Div -> "Div"
        | Pow -> "Pow"
        | Max -> "Max"
        | Min -> "Min"
        | Atan2 -> "Atan2"
        | Lt -> "Lt"
        | Gt -> "Gt"
        | Le -> "Le"
        | Ge -> "Ge"
        | Eq -> "Eq"
        | Ne -> "Ne"

/// Reductions along one dimension.
[<RequireQualifiedAccess>]
type ReduceOp =
    | Sum
    | Prod
    | Max
    | Min
    | ArgMax  // int32 result
    | ArgMin  // int32 result

    /// The case name, for error messages (cheap, unlike the default union printing).
    override op.ToString() =
        match op with
        | Sum -> "Sum"
        | Prod -> "Prod"
        | Max -> "Max"
        | Min -> "Min"
        | ArgMax -> "ArgMax"
        | ArgMin -> "ArgMin"

/// Distributions the counter-based generator draws from.
[<RequireQualifiedAccess>]
type RandomKind =
    | Uniform of low: float * high: float
    | Normal of mean: float * std: float
    | Rademacher
    | Bernoulli of p: float
    | Integers of low: int * high: int  // int32 result, low inclusive, high exclusive

/// Activations a backend fuses into a dense layer (GEMM, bias and activation in one pass), with
/// derivatives expressed through the activation's output so the backward needs no pre-activation.
[<RequireQualifiedAccess>]
type Activation =
    | Identity
    | Tanh
    | Sigmoid
    | Relu
    | LeakyRelu of slope: float
    | Softplus
    | Elu of alpha: float

    override a.ToString() =
        match a with
        | Identity -> "Identity"
        | Tanh -> "Tanh"
        | Sigmoid -> "Sigmoid"
        | Relu -> "Relu"
        | LeakyRelu s -> $"LeakyRelu {s}"
        | Softplus -> "Softplus"
        | Elu a -> $"Elu {a}"
