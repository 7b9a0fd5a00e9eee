namespace Flows.Plot

/// A polyline to draw: points (X[i], Y[i]) in data coordinates joined in order, in one colour.
type Series =
    { X: float[]
      Y: float[]
      Colour: byte * byte * byte }

/// Line plots (trajectories against time) on a white panel with a grey frame and zero line.
[<RequireQualifiedAccess>]
module Lines =

    let private set (image: Image) (x: int) (y: int) (r: byte, g: byte, b: byte) =
        if x >= 0 && x < image.Width && y >= 0 && y < image.Height then
            let at = 3 * (y * image.Width + x)
            image.Pixels[at] <- r
            image.Pixels[at + 1] <- g
            image.Pixels[at + 2] <- b

    // Bresenham's line between two pixels; pixels outside the image are skipped.
    let private segment (image: Image) (x0: int, y0: int) (x1: int, y1: int) colour =
        let dx, dy = abs (x1 - x0), -abs (y1 - y0)
        let sx, sy = (if x0 < x1 then 1 else -1), (if y0 < y1 then 1 else -1)
        let mutable x, y, err = x0, y0, dx + dy
        let mutable going = true
        while going do
            set image x y colour
            if x = x1 && y = y1 then going <- false
            else
                let e2 = 2 * err
                if e2 >= dy then
                    err <- err + dy
                    x <- x + sx
                if e2 <= dx then
                    err <- err + dx
                    y <- y + sy

    /// A width × height panel of the series in the window [xLow, xHigh] × [yLow, yHigh] (y up).
    let plot (width: int) (height: int) (xLow: float, xHigh: float) (yLow: float, yHigh: float) (series: Series list) : Image =
        if not (xHigh > xLow && yHigh > yLow) then invalidArg "window" $"Lines.plot: empty window [{xLow}, {xHigh}] × [{yLow}, {yHigh}]"
        let image = Png.blank width height (255uy, 255uy, 255uy)
        let pixel (x: float) (y: float) =
            // clamped far outside so the integer line walk stays short
            let clamp (v: float) (size: int) = int (max -1.0 (min (float size) v))
            clamp ((x - xLow) / (xHigh - xLow) * float (width - 1)) width,
            clamp ((yHigh - y) / (yHigh - yLow) * float (height - 1)) height
        let grey = (180uy, 180uy, 180uy)
        segment image (0, 0) (width - 1, 0) grey
        segment image (0, height - 1) (width - 1, height - 1) grey
        segment image (0, 0) (0, height - 1) grey
        segment image (width - 1, 0) (width - 1, height - 1) grey
        if yLow < 0.0 && yHigh > 0.0 then segment image (pixel xLow 0.0) (pixel xHigh 0.0) grey
        for s in series do
            if s.X.Length <> s.Y.Length then invalidArg (nameof series) $"Lines.plot: a series has {s.X.Length} x values and {s.Y.Length} y values"
            for i in 1 .. s.X.Length - 1 do
                segment image (pixel s.X[i - 1] s.Y[i - 1]) (pixel s.X[i] s.Y[i]) s.Colour
        image
