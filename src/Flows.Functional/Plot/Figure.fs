namespace Flows.Plot

open System
open Flows.Tensors

/// Heat maps and scatter panels on a fixed square window, laid side by side.
[<RequireQualifiedAccess>]
module Figure =

    /// matplotlib's "hot" colour map for a value in [0, 1].
    let hot (v: float) =
        let v = max 0.0 (min 1.0 v)
        let channel (start: float) = byte (255.0 * max 0.0 (min 1.0 ((v - start) / 0.365)))
        channel 0.0, channel 0.365, byte (255.0 * max 0.0 (min 1.0 ((v - 0.73) / 0.27)))

    /// The n × n grid of points on [−bound, bound]² (float64 rows [n·n; 2]) in the order `heatMap`
    /// reads values: point row·n + col sits at (axis[col], axis[row]).
    let grid (n: int) (bound: float) =
        let axis = Tensor.linspace(-bound, bound, n, Dtype.Float64)
        let xs = axis.unsqueeze(0).expand([| n; n |]).reshape [| n * n |]
        let ys = axis.unsqueeze(1).expand([| n; n |]).reshape [| n * n |]
        Tensor.stack([| xs; ys |], 1)

    /// A panel of size n × n from values on an n × n grid (row 0 = lowest y), scaled to the maximum.
    let heatMap (n: int) (values: float[]) : Image =
        let finite = values |> Array.map (fun v -> if Double.IsFinite v then v else 0.0)
        let top = max 1e-300 (Array.max finite)
        let image = Png.blank n n (0uy, 0uy, 0uy)
        for row in 0 .. n - 1 do
            for col in 0 .. n - 1 do
                let r, g, b = hot (finite[row * n + col] / top)
                let at = 3 * ((n - 1 - row) * n + col)
                image.Pixels[at] <- r
                image.Pixels[at + 1] <- g
                image.Pixels[at + 2] <- b
        image

    /// A 2-D histogram panel of points (x, y) in the window [−bound, bound]², n × n bins.
    let histogram (n: int) (bound: float) (points: float[]) : Image =
        let counts = Array.zeroCreate<float> (n * n)
        for i in 0 .. points.Length / 2 - 1 do
            let col = int ((points[2 * i] + bound) / (2.0 * bound) * float n)
            let row = int ((points[2 * i + 1] + bound) / (2.0 * bound) * float n)
            if col >= 0 && col < n && row >= 0 && row < n then counts[row * n + col] <- counts[row * n + col] + 1.0
        heatMap n counts

    /// Panels side by side with a white gap between them.
    let beside (panels: Image list) : Image =
        let gap = 8
        let height = panels |> List.map _.Height |> List.max
        let width = (panels |> List.sumBy _.Width) + gap * (panels.Length - 1)
        let image = Png.blank width height (255uy, 255uy, 255uy)
        let mutable x0 = 0
        for p in panels do
            for y in 0 .. p.Height - 1 do
                Array.blit p.Pixels (y * p.Width * 3) image.Pixels ((y * width + x0) * 3) (p.Width * 3)
            x0 <- x0 + p.Width + gap
        image

    /// Panels stacked top to bottom with a white gap between them (rows of a grid of `beside` rows).
    let above (panels: Image list) : Image =
        let gap = 8
        let width = panels |> List.map _.Width |> List.max
        let height = (panels |> List.sumBy _.Height) + gap * (panels.Length - 1)
        let image = Png.blank width height (255uy, 255uy, 255uy)
        let mutable y0 = 0
        for p in panels do
            for y in 0 .. p.Height - 1 do
                Array.blit p.Pixels (y * p.Width * 3) image.Pixels ((y0 + y) * width * 3) (p.Width * 3)
            y0 <- y0 + p.Height + gap
        image
