namespace Flows.Plotting

open System
open System.IO
open ScottPlot
open SkiaSharp

/// Panels laid out in rows on a white page, each panel PanelWidth × PanelHeight pixels, under an
/// optional title line.
type Figure =
    { Title: string
      Rows: Plot[][]
      PanelWidth: int
      PanelHeight: int }

/// Figures: layout, PNG bytes, and files written through a temporary name and a rename.
[<RequireQualifiedAccess>]
module Figure =

    /// No figure is larger than this many pixels (a 4000 × 4000 page): a picture must not cost gigabytes.
    let maxPixels = 16_000_000

    let private titleHeight (figure: Figure) = if String.IsNullOrEmpty figure.Title then 0 else 40

    /// The figure's width and height in pixels.
    let size (figure: Figure) =
        let columns = if figure.Rows.Length = 0 then 0 else figure.Rows |> Array.map Array.length |> Array.max
        columns * figure.PanelWidth, titleHeight figure + figure.Rows.Length * figure.PanelHeight

    /// Rows of panels, each panel panelWidth × panelHeight pixels; checks the sizes against `maxPixels`.
    let create (title: string) (panelWidth: int) (panelHeight: int) (rows: Plot[][]) =
        if panelWidth < 50 then invalidArg (nameof panelWidth) $"Figure: panelWidth must be at least 50 pixels, got {panelWidth}"
        if panelHeight < 50 then invalidArg (nameof panelHeight) $"Figure: panelHeight must be at least 50 pixels, got {panelHeight}"
        if rows.Length = 0 || rows |> Array.exists (fun r -> r.Length = 0) then invalidArg (nameof rows) "Figure: every row needs at least one panel"
        let figure = { Title = (if isNull title then "" else title); Rows = rows; PanelWidth = panelWidth; PanelHeight = panelHeight }
        let width, height = size figure
        if int64 width * int64 height > int64 maxPixels then
            invalidArg (nameof rows) $"Figure: {width} × {height} pixels is above the budget of {maxPixels:N0}; use fewer or smaller panels"
        figure

    /// One row of panels side by side.
    let row (title: string) (panelWidth: int) (panelHeight: int) (panels: Plot[]) = create title panelWidth panelHeight [| panels |]

    /// The figure as PNG file bytes.
    let png (figure: Figure) =
        let width, height = size figure
        let top = titleHeight figure
        use surface = SKSurface.Create(SKImageInfo(width, height))
        let canvas = surface.Canvas
        canvas.Clear SKColors.White
        if top > 0 then
            use font = new SKFont(SKTypeface.FromFamilyName(Fonts.Default), 20.0f)
            use paint = new SKPaint(Color = SKColors.Black, IsAntialias = true)
            canvas.DrawText(figure.Title, float32 width / 2.0f, 27.0f, SKTextAlign.Center, font, paint)
        // each panel on a surface of its own: a ScottPlot render clears the whole canvas it is given
        use panelSurface = SKSurface.Create(SKImageInfo(figure.PanelWidth, figure.PanelHeight))
        figure.Rows
        |> Array.iteri (fun r panels ->
            panels
            |> Array.iteri (fun c plot ->
                plot.Render(panelSurface.Canvas, figure.PanelWidth, figure.PanelHeight)
                use panel = panelSurface.Snapshot()
                canvas.DrawImage(panel, float32 (c * figure.PanelWidth), float32 (top + r * figure.PanelHeight))))
        use image = surface.Snapshot()
        use data = image.Encode(SKEncodedImageFormat.Png, 100)
        data.ToArray()

    /// Writes the figure to `path` through a temporary file and a rename, so a crash never leaves a
    /// half-written picture; creates the folder if needed.
    let save (path: string) (figure: Figure) =
        if String.IsNullOrWhiteSpace path then invalidArg (nameof path) "Figure.save: the path is empty"
        let bytes = png figure
        let full = Path.GetFullPath path
        Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
        let temp = $"{full}.{Guid.NewGuid():N}.tmp"
        try
            File.WriteAllBytes(temp, bytes)
            File.Move(temp, full, true)
        finally
            if File.Exists temp then File.Delete temp
