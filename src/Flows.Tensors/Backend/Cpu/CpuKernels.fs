namespace Flows.Tensors.Backend.Cpu

open Flows.Tensors
open Flows.Tensors.Backend

/// What a kernel registered from outside Flows.Tensors needs of the CPU backend: a tensor's
/// elements, arrays from the recycling pool, and tensors over arrays it filled.
[<RequireQualifiedAccess>]
module CpuKernels =

    /// The elements of a CPU tensor as 'T[] (float32, float or int), without a copy: read them,
    /// never write them (storage is immutable and shared by reshapes). `op` names the kernel in errors.
    let elements<'T> (op: string) (t: RawTensor) : 'T[] =
        match CpuTensor.Of(t, op).Storage with
        | :? ('T[]) as a -> a
        | _ -> invalidArg op $"{op}: expected a {typeof<'T>.Name} tensor, got {t.Dtype} {Shape.show t.Shape}"

    /// An array of n elements with arbitrary contents, from the pool the reverse sweep recycles
    /// into: the kernel writes all of it.
    let rent<'T> (n: int) : 'T[] = BufferPool.Rent<'T> n

    /// A CPU tensor over `data` (float32[], float[] or int[]) without a copy: `data` must not
    /// change afterwards.
    let tensor (data: System.Array) (shape: int[]) : RawTensor =
        let stored =
            match data with
            | :? (float32[]) as a -> F32 a
            | :? (float[]) as a -> F64 a
            | :? (int[]) as a -> I32 a
            | _ -> invalidArg (nameof data) $"expected float32[], float[] or int[], got {data.GetType().Name}"
        if data.Length <> Shape.numel shape then Shape.fail "tensor" $"{data.Length} elements cannot have shape {Shape.show shape}"
        CpuTensor(stored, shape)
