namespace Flows.Tensors

open Flows.Tensors.Backend
open Flows.Tensors.Backend.Cpu

/// Creating tensors: constants, ranges and arrays, on a device (CPU unless told otherwise).
[<AutoOpen>]
module Create =

    let private backend (device: Device option) = Registry.Get(defaultArg device Device.Cpu)

    type Tensor with
        /// A tensor filled with `value`.
        static member full(shape: int[], value: float, ?dtype: Dtype, ?device: Device) =
            Shape.validate "full" shape
            Tensor((backend device).Full(shape, defaultArg dtype Dtype.Float32, value))
        /// Zeros.
        static member zeros(shape: int[], ?dtype: Dtype, ?device: Device) =
            Tensor.full(shape, 0.0, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
        /// Ones.
        static member ones(shape: int[], ?dtype: Dtype, ?device: Device) =
            Tensor.full(shape, 1.0, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
        /// A rank-0 tensor.
        static member scalar(value: float, ?dtype: Dtype, ?device: Device) =
            Tensor.full([||], value, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu)
        /// Zeros with this tensor's shape, dtype and device.
        member t.zerosLike() = Tensor.full(t.shape, 0.0, t.dtype, t.device)
        /// Ones with this tensor's shape, dtype and device.
        member t.onesLike() = Tensor.full(t.shape, 1.0, t.dtype, t.device)
        /// `value` everywhere, with this tensor's shape, dtype and device.
        member t.fullLike(value: float) = Tensor.full(t.shape, value, t.dtype, t.device)
        /// A rank-0 tensor of `value` with this tensor's dtype and device.
        member t.scalarLike(value: float) = Tensor.full([||], value, t.dtype, t.device)

        /// A tensor from a flat row-major float32[] (copied).
        static member ofArray(data: float32[], ?shape: int[], ?device: Device) =
            Tensor((backend device).OfArray(data, defaultArg shape [| data.Length |]))
        /// A tensor from a flat row-major float[] (copied).
        static member ofArray(data: float[], ?shape: int[], ?device: Device) =
            Tensor((backend device).OfArray(data, defaultArg shape [| data.Length |]))
        /// An int32 tensor from a flat row-major int[] (copied); used for indices.
        static member ofArray(data: int[], ?shape: int[], ?device: Device) =
            Tensor((backend device).OfArray(data, defaultArg shape [| data.Length |]))
        /// A matrix from a rectangular float32[,].
        static member ofArray2D(data: float32[,], ?device: Device) =
            let rows, cols = Array2D.length1 data, Array2D.length2 data
            Tensor.ofArray(Array.init (rows * cols) (fun i -> data[i / cols, i % cols]), [| rows; cols |], defaultArg device Device.Cpu)
        /// A matrix from a rectangular float[,].
        static member ofArray2D(data: float[,], ?device: Device) =
            let rows, cols = Array2D.length1 data, Array2D.length2 data
            Tensor.ofArray(Array.init (rows * cols) (fun i -> data[i / cols, i % cols]), [| rows; cols |], defaultArg device Device.Cpu)

        /// 0, 1, ..., n-1.
        static member arange(n: int, ?dtype: Dtype, ?device: Device) =
            if not (n >= 0) then Shape.fail "arange" ($"n must be non-negative, got {n}")
            Tensor((backend device).Arange(n, defaultArg dtype Dtype.Float32))
        /// `count` evenly spaced values from `start` to `stop` inclusive.
        static member linspace(start: float, stop: float, count: int, ?dtype: Dtype, ?device: Device) =
            if not (count >= 1) then Shape.fail "linspace" ($"count must be at least 1, got {count}")
            let step = if count = 1 then 0.0 else (stop - start) / float (count - 1)
            Tensor.arange(count, defaultArg dtype Dtype.Float32, defaultArg device Device.Cpu) * step + start
        /// The n x n identity.
        static member eye(n: int, ?dtype: Dtype, ?device: Device) =
            let dtype = defaultArg dtype Dtype.Float32
            let device = defaultArg device Device.Cpu
            let i = Tensor.arange(n, dtype, device)
            i.unsqueeze(1).eq(i.unsqueeze 0)
        /// Moves the storage to another device (the only way tensors cross devices).
        member t.moveTo(device: Device) =
            if t.device = device then t
            else
                let from = t.device
                Tensor.Lift1(t, (fun r -> Registry.Move(r, device)), fun _ _ adj -> adj.moveTo from)
        /// Converts to another dtype; gradients convert back.
        member t.cast(dtype: Dtype) =
            if t.dtype = dtype then t
            else
                let from = t.dtype
                Tensor.Lift1(t, (fun r -> r.Cast dtype), fun _ _ adj -> adj.cast from)

/// Creation as plain functions, for languages that do not see F# extension members (C#).
[<RequireQualifiedAccess>]
module TensorOf =

    /// A float32 tensor of `shape` from a flat row-major array (copied).
    let floats (data: float32[]) (shape: int[]) = Tensor.ofArray(data, shape)

    /// A float64 tensor of `shape` from a flat row-major array (copied).
    let doubles (data: float[]) (shape: int[]) = Tensor.ofArray(data, shape)

    /// The tensor on `device` (`moveTo`).
    let onDevice (device: Device) (t: Tensor) = t.moveTo device

    /// The tensor in `dtype` (`cast`).
    let inDtype (dtype: Dtype) (t: Tensor) = t.cast dtype
