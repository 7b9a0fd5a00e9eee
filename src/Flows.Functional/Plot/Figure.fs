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

    // Panels along one axis with a white 8-pixel gap: left to right or top to bottom.
    let private tile (horizontal: bool) (panels: Image list) : Image =
        let gap = 8
        let along (p: Image) = if horizontal then p.Width else p.Height
        let across (p: Image) = if horizontal then p.Height else p.Width
        let length = (panels |> List.sumBy along) + gap * (panels.Length - 1)
        let breadth = panels |> List.map across |> List.max
        let width, height = if horizontal then length, breadth else breadth, length
        let image = Png.blank width height (255uy, 255uy, 255uy)
        let mutable offset = 0
        for p in panels do
            let x0, y0 = if horizontal then offset, 0 else 0, offset
            for y in 0 .. p.Height - 1 do
                Array.blit p.Pixels (y * p.Width * 3) image.Pixels (((y0 + y) * width + x0) * 3) (p.Width * 3)
            offset <- offset + along p + gap
        image

    /// Panels side by side with a white gap between them.
    let beside (panels: Image list) : Image = tile true panels

    /// Panels stacked top to bottom with a white gap between them.
    let above (panels: Image list) : Image = tile false panels

    /// Grey images tiled `columns` to a row on a white page, each pixel drawn as a `scale`×`scale`
    /// square with a 2-pixel gap between images; `values` are [n; height; width] row-major in [0, 1].
    let imageGrid (columns: int) (scale: int) (height: int) (width: int) (values: float[]) : Image =
        let count = values.Length / (height * width)
        let rows = (count + columns - 1) / columns
        let gap = 2
        let cellW, cellH = width * scale + gap, height * scale + gap
        let image = Png.blank (columns * cellW - gap) (rows * cellH - gap) (255uy, 255uy, 255uy)
        for k in 0 .. count - 1 do
            let x0, y0 = (k % columns) * cellW, (k / columns) * cellH
            for y in 0 .. height * scale - 1 do
                for x in 0 .. width * scale - 1 do
                    let v = values[(k * height + y / scale) * width + x / scale]
                    let grey = byte (255.0 * max 0.0 (min 1.0 v))
                    let at = 3 * ((y0 + y) * image.Width + x0 + x)
                    image.Pixels[at] <- grey
                    image.Pixels[at + 1] <- grey
                    image.Pixels[at + 2] <- grey
        image
