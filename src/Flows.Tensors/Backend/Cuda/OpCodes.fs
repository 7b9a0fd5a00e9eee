namespace Flows.Tensors.Backend.Cuda

open Flows.Tensors
open Flows.Tensors.Backend

/// The integer codes the kernels switch on (the `case` labels of elementwise.cu, reduce.cu,
/// random.cu and fused.cu), with each op's scalar parameters.
[<RequireQualifiedAccess>]
module internal OpCodes =

    /// Kernel-name suffix of a dtype.
    let suffix (dtype: Dtype) =
        match dtype with
        | Dtype.Float32 -> "f32"
        | Dtype.Float64 -> "f64"
        | Dtype.Int32 -> "i32"

    /// Code and two scalar parameters of a unary op.
    let unary (op: UnaryOp) : int * float * float =
        match op with
        | UnaryOp.Neg -> 0, 0.0, 0.0
        | UnaryOp.Exp -> 1, 0.0, 0.0
        | UnaryOp.Log -> 2, 0.0, 0.0
        | UnaryOp.Log1p -> 3, 0.0, 0.0
        | UnaryOp.Expm1 -> 4, 0.0, 0.0
        | UnaryOp.Sqrt -> 5, 0.0, 0.0
        | UnaryOp.Abs -> 6, 0.0, 0.0
        | UnaryOp.Sign -> 7, 0.0, 0.0
        | UnaryOp.Tanh -> 8, 0.0, 0.0
        | UnaryOp.Sigmoid -> 9, 0.0, 0.0
        | UnaryOp.Softplus -> 10, 0.0, 0.0
        | UnaryOp.Relu -> 11, 0.0, 0.0
        | UnaryOp.Sin -> 12, 0.0, 0.0
        | UnaryOp.Cos -> 13, 0.0, 0.0
        | UnaryOp.Atan -> 14, 0.0, 0.0
        | UnaryOp.Square -> 15, 0.0, 0.0
        | UnaryOp.Reciprocal -> 16, 0.0, 0.0
        | UnaryOp.Floor -> 17, 0.0, 0.0
        | UnaryOp.Ceil -> 18, 0.0, 0.0
        | UnaryOp.Round -> 19, 0.0, 0.0
        | UnaryOp.Step -> 20, 0.0, 0.0
        | UnaryOp.IsNan -> 21, 0.0, 0.0
        | UnaryOp.IsInf -> 22, 0.0, 0.0
        | UnaryOp.AddScalar s -> 23, s, 0.0
        | UnaryOp.MulScalar s -> 24, s, 0.0
        | UnaryOp.RsubScalar s -> 25, s, 0.0
        | UnaryOp.PowScalar p -> 26, p, 0.0
        | UnaryOp.LeakyRelu a -> 27, a, 0.0
        | UnaryOp.Elu a -> 28, a, 0.0
        | UnaryOp.Clamp(lo, hi) -> 29, lo, hi
        | UnaryOp.InRange(lo, hi) -> 30, lo, hi

    /// Code of a binary op.
    let binary (op: BinaryOp) =
        match op with
        | BinaryOp.Add -> 0
        | BinaryOp.Sub -> 1
        | BinaryOp.Mul -> 2
        | BinaryOp.Div -> 3
        | BinaryOp.Pow -> 4
        | BinaryOp.Max -> 5
        | BinaryOp.Min -> 6
        | BinaryOp.Atan2 -> 7
        | BinaryOp.Lt -> 8
        | BinaryOp.Gt -> 9
        | BinaryOp.Le -> 10
        | BinaryOp.Ge -> 11
        | BinaryOp.Eq -> 12
        | BinaryOp.Ne -> 13

    /// Code of a value reduction (arg reductions have their own kernel).
    let reduce (op: ReduceOp) =
        match op with
        | ReduceOp.Sum -> 0
        | ReduceOp.Prod -> 1
        | ReduceOp.Max -> 2
        | ReduceOp.Min -> 3
        | ReduceOp.ArgMax | ReduceOp.ArgMin -> invalidArg "op" "arg reductions use arg_reduce"

    /// Code and parameter of an activation.
    let activation (a: Activation) : int * float =
        match a with
        | Activation.Identity -> 0, 0.0
        | Activation.Tanh -> 1, 0.0
        | Activation.Sigmoid -> 2, 0.0
        | Activation.Relu -> 3, 0.0
        | Activation.LeakyRelu s -> 4, s
        | Activation.Softplus -> 5, 0.0
        | Activation.Elu a -> 6, a

    /// Code and two parameters of a distribution.
    let random (kind: RandomKind) : int * float * float =
        match kind with
        | RandomKind.Uniform(lo, hi) -> 0, lo, hi
        | RandomKind.Normal(mean, std) -> 1, mean, std
        | RandomKind.Rademacher -> 2, 0.0, 0.0
        | RandomKind.Bernoulli p -> 3, p, 0.0
        | RandomKind.Integers(lo, hi) -> 4, float lo, float hi
