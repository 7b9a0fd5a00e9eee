namespace Flows.Plotting

open System
open ScottPlot

/// One line of a line plot: points (X[i], Y[i]) joined in order, in a colour ("#rrggbb"), with a
/// legend label ("" for none).
type Series =
    { X: float[]
      Y: float[]
      Colour: string
      Label: string }

/// Single panels (ScottPlot plots) with titles, axes and, for heat maps, a colour bar; `Figure`
/// lays them out and writes the PNG.
[<RequireQualifiedAccess>]
module Panel =

    let private titled (title: string) (xLabel: string) (yLabel: string) (plot: Plot) =
        plot.Title(title) |> ignore
        plot.XLabel(xLabel) |> ignore
        plot.YLabel(yLabel) |> ignore
        plot

    let private show (window: Window) (plot: Plot) =
        plot.Axes.SetLimits(window.XLow, window.XHigh, window.YLow, window.YHigh)
        plot

    let private check (name: string) (ok: bool) (message: string) = if not ok then invalidArg name message

    /// A heat map of values on the n × n grid of `Grid.points n window` (row 0 = lowest y), with x and
    /// y axes over the window and a colour bar; non-finite values are drawn as 0.
    let heatMap (title: string) (window: Window) (n: int) (values: float[]) =
        check (nameof n) (n >= 2) $"Panel.heatMap: n must be at least 2, got {n}"
        check (nameof values) (values.Length = n * n) $"Panel.heatMap: expected {n * n} values for a {n} × {n} grid, got {values.Length}"
        let plot = new Plot()
        let cells = Array2D.init n n (fun row col -> let v = values[row * n + col] in if Double.IsFinite v then v else 0.0)
        let map = plot.Add.Heatmap(cells)
        // half a cell beyond the outer grid points, so each cell is centred on its point
        let dx, dy = (window.XHigh - window.XLow) / float (n - 1) / 2.0, (window.YHigh - window.YLow) / float (n - 1) / 2.0
        map.Extent <- Nullable(CoordinateRect(window.XLow - dx, window.XHigh + dx, window.YLow - dy, window.YHigh + dy))
        map.FlipVertically <- true
        map.Colormap <- Colormaps.Inferno()
        plot.Add.ColorBar(map) |> ignore
        plot |> titled title "x" "y" |> show window

    /// A scatter plot of points (xs[i], ys[i]) in the window, small translucent dots so density shows.
    let scatter (title: string) (window: Window) (xs: float[]) (ys: float[]) =
        check (nameof ys) (xs.Length = ys.Length) $"Panel.scatter: {xs.Length} x values and {ys.Length} y values"
        let plot = new Plot()
        let dots = plot.Add.ScatterPoints(xs, ys)
        dots.MarkerSize <- 2.0f
        dots.Color <- Color.FromHex("#1f77b4").WithAlpha(0.35)
        plot |> titled title "x" "y" |> show window

    /// A scatter plot of 2-D points given as rows [n; 2] flattened row-major (x0, y0, x1, y1, ...).
    let scatterRows (title: string) (window: Window) (rows: float[]) =
        check (nameof rows) (rows.Length % 2 = 0) $"Panel.scatterRows: expected pairs (x, y), got {rows.Length} values"
        scatter title window (Array.init (rows.Length / 2) (fun i -> rows[2 * i])) (Array.init (rows.Length / 2) (fun i -> rows[2 * i + 1]))

    /// Lines through each series, with a legend when any series has a label.
    let lines (title: string) (xLabel: string) (yLabel: string) (series: Series list) =
        let plot = new Plot()
        for s in series do
            check (nameof series) (s.X.Length = s.Y.Length) $"Panel.lines: a series has {s.X.Length} x values and {s.Y.Length} y values"
            let line = plot.Add.ScatterLine(s.X, s.Y)
            line.Color <- Color.FromHex s.Colour
            line.LineWidth <- 1.5f
            if s.Label <> "" then line.LegendText <- s.Label
        if series |> List.exists (fun s -> s.Label <> "") then plot.ShowLegend(Alignment.UpperRight) |> ignore
        plot |> titled title xLabel yLabel

    /// 2-D paths (each [x0, y0, x1, y1, ...], in time order) as olive lines from a red start to a
    /// blue end, in the window: the trajectories of a continuous flow.
    let trajectories (title: string) (window: Window) (paths: float[][]) =
        check (nameof paths) (paths |> Array.forall (fun p -> p.Length >= 4 && p.Length % 2 = 0)) "Panel.trajectories: every path needs at least two points (x, y)"
        let plot = new Plot()
        for path in paths do
            let line = plot.Add.ScatterLine(Array.init (path.Length / 2) (fun k -> path[2 * k]), Array.init (path.Length / 2) (fun k -> path[2 * k + 1]))
            line.Color <- Color.FromHex("#808000").WithAlpha(0.5)
            line.LineWidth <- 1.0f
        let ends (label: string) (colour: string) (at: float[] -> float * float) =
            let points = paths |> Array.map at
            let dots = plot.Add.ScatterPoints(Array.map fst points, Array.map snd points)
            dots.Color <- Color.FromHex colour
            dots.MarkerSize <- 3.0f
            dots.LegendText <- label
        ends "start (base sample)" "#dc0000" (fun p -> p[0], p[1])
        ends "end (data space)" "#0000dc" (fun p -> p[p.Length - 2], p[p.Length - 1])
        plot.ShowLegend(Alignment.UpperRight) |> ignore
        plot |> titled title "x" "y" |> show window

    /// A histogram of `values` in `bins` equal bins over [low, high] (values outside are left out).
    let histogram (title: string) (xLabel: string) (low: float) (high: float) (bins: int) (values: float[]) =
        check (nameof bins) (bins >= 1) $"Panel.histogram: bins must be at least 1, got {bins}"
        check (nameof high) (high > low) $"Panel.histogram: expected low < high, got [{low}, {high}]"
        let width = (high - low) / float bins
        let counts = Array.zeroCreate<float> bins
        for v in values do
            let bin = int (Math.Floor((v - low) / width))
            if bin >= 0 && bin < bins then counts[bin] <- counts[bin] + 1.0
        let plot = new Plot()
        let bars = plot.Add.Bars(Array.init bins (fun b -> low + (float b + 0.5) * width), counts)
        for bar in bars.Bars do
            bar.Size <- width
            bar.LineWidth <- 0.0f
            bar.FillColor <- Color.FromHex "#1f77b4"
        plot.Axes.Margins(0.0, 0.0, 0.0, 0.05)
        plot |> titled title xLabel "count"

    /// Grey images tiled `columns` to a row with a one-pixel gap, no axes; `values` are
    /// [count; height; width] row-major, 0 = black, 1 = white.
    let images (title: string) (columns: int) (height: int) (width: int) (values: float[]) =
        check (nameof columns) (columns >= 1) $"Panel.images: columns must be at least 1, got {columns}"
        check (nameof values) (height >= 1 && width >= 1 && values.Length % (height * width) = 0 && values.Length > 0)
            $"Panel.images: {values.Length} values are not a whole number of {height} × {width} images"
        let count = values.Length / (height * width)
        let rows = (count + columns - 1) / columns
        let cellH, cellW = height + 1, width + 1
        // gaps and missing tiles are NaN, which the heat map leaves transparent (the white page)
        let page =
            Array2D.init (rows * cellH - 1) (columns * cellW - 1) (fun y x ->
                let k = (y / cellH) * columns + x / cellW
                if y % cellH = height || x % cellW = width || k >= count then nan
                else values[(k * height + y % cellH) * width + x % cellW])
        let plot = new Plot()
        let map = plot.Add.Heatmap(page)
        map.Colormap <- Colormaps.Grayscale()
        map.ManualRange <- Nullable(Range(0.0, 1.0))
        plot.Axes.Frameless() |> ignore
        plot.HideGrid()
        plot.Axes.SquareUnits() |> ignore
        plot.Title(title) |> ignore
        plot
