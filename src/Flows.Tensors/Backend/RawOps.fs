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

/// Reductions along one dimension.
[<RequireQualifiedAccess>]
type ReduceOp =
    | Sum
    | Prod
    | Max
    | Min
    | ArgMax  // int32 result
    | ArgMin  // int32 result

/// Distributions the counter-based generator draws from.
[<RequireQualifiedAccess>]
type RandomKind =
    | Uniform of low: float * high: float
    | Normal of mean: float * std: float
    | Rademacher
    | Bernoulli of p: float
    | Integers of low: int * high: int  // int32 result, low inclusive, high exclusive
