namespace Flows.Nn

open Flows
open Flows.Tensors

/// Two-dimensional "same" convolutions (stride 1, zero padding k/2) on images [n; c; h; w], built
/// from differentiable ops: the k×k shifted copies of the padded input become the columns of a
/// patch matrix (im2col), and one GEMM with the flattened kernel does the rest; a narrowing
/// convolution shifts its GEMM's products instead.
[<RequireQualifiedAccess>]
module Conv =

    /// A k×k convolution's parameters: "weight" [out; in; k; k] and "bias" [out], uniform in
    /// ±1/√(in·k·k) like PyTorch's nn.Conv2d, or zeros when `zero`.
    let create (gen: Generator) (dtype: Dtype) (inputs: int) (outputs: int) (kernel: int) (zero: bool) =
        Guard.positive (nameof inputs) inputs
        Guard.positive (nameof outputs) outputs
        Guard.that (nameof kernel) (kernel > 0 && kernel % 2 = 1) $"a same-size convolution needs an odd kernel, got {kernel}"
        let bound = 1.0 / sqrt (float (inputs * kernel * kernel))
        let draw (shape: int[]) = if zero then Tensor.zeros(shape, dtype) else gen.uniform(shape, -bound, bound, dtype)
        Params.ofList [ "weight", draw [| outputs; inputs; kernel; kernel |]; "bias", draw [| outputs |] ]

    /// The patch matrix [n·h·w; c·k·k] of images [n; c; h; w]: row (i, y, x) holds the k×k
    /// neighbourhood of pixel (y, x) of image i, channel-major, zero outside the image.
    let patches (kernel: int) (x: Tensor) =
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        if kernel = 1 then x.permute([| 0; 2; 3; 1 |]).reshape [| n * h * w; c |]
        else
            let r = kernel / 2
            let padded = x.pad([| 0; 0; r; r |], [| 0; 0; r; r |])
            let shifted = [| for dy in 0 .. kernel - 1 do for dx in 0 .. kernel - 1 -> padded.slice([| 0; 0; dy; dx |], [| n; c; h; w |]) |]
            // [n; c; k·k; h; w] → [n; h; w; c; k·k]: the column order matches weight [out; c; k; k]
            Tensor.stack(shifted, 2).permute([| 0; 3; 4; 1; 2 |]).reshape [| n * h * w; c * kernel * kernel |]

    /// The k×k convolution of images [n; c; h; w] by shifted products, without its bias: one GEMM maps
    /// each pixel's c channels to k·k·out partial outputs, and output pixel (y, x) adds partial (dy, dx)
    /// of pixel (y + dy − k/2, x + dx − k/2). Its copies hold k·k·out values per pixel where im2col's
    /// hold k·k·c: the cheaper way when a convolution narrows, as a coupling's last one does.
    let private shiftedProducts (weight: Tensor) (x: Tensor) =
        let n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        let outputs, kernel = weight.shape[0], weight.shape[2]
        let r = kernel / 2
        // kernel rows in (dy, dx, o) order, each over the input channels
        let rows = weight.permute([| 2; 3; 0; 1 |]).reshape [| kernel * kernel * outputs; c |]
        let partial =
            (patches 1 x).matmul(rows.transpose()).reshape([| n; h; w; kernel * kernel * outputs |]).permute([| 0; 3; 1; 2 |])
        // partial (dy, dx) of pixel (y + dy − r, x + dx − r) sits at (y + dy, x + dx) once padded by r
        let padded = partial.pad([| 0; 0; r; r |], [| 0; 0; r; r |])
        [ for dy in 0 .. kernel - 1 do
              for dx in 0 .. kernel - 1 -> padded.slice([| 0; (dy * kernel + dx) * outputs; dy; dx |], [| n; outputs; h; w |]) ]
        |> List.reduce (+)

    /// Applies the convolution with parameters `p` to images [n; c; h; w], then `activation` (none
    /// for a linear output), giving [n; out; h; w]: by im2col, or by shifted products when a k×k
    /// kernel (k > 1) has fewer outputs than inputs.
    let apply (activation: Activation option) (p: Params) (x: Tensor) =
        let weight = p["weight"]
        if x.dim <> 4 || x.shape[1] <> weight.shape[1] then
            invalidArg (nameof x) $"expected images [n; {weight.shape[1]}; h; w], got shape {Shape.show x.shape}"
        let n, h, w, outputs = x.shape[0], x.shape[2], x.shape[3], weight.shape[0]
        if weight.shape[2] > 1 && outputs < weight.shape[1] then
            let y = shiftedProducts weight x + p["bias"].reshape [| 1; outputs; 1; 1 |]
            activation |> Option.map (fun a -> Mlp.activate a y) |> Option.defaultValue y
        else
            let fused = activation |> Option.map Mlp.fused |> Option.defaultValue Backend.Activation.Identity
            let y = Tensor.dense(patches weight.shape[2] x, weight.reshape [| outputs; -1 |], p["bias"], fused)
            y.reshape([| n; h; w; outputs |]).permute [| 0; 3; 1; 2 |]
