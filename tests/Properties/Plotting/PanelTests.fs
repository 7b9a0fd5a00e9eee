/// Panels drawn and decoded: a heat map's brightest pixel sits where its function peaks; the grid
/// points are in the order the heat map reads them; bad arguments are errors naming the argument.
module Flows.Properties.Plotting.PanelTests

open System
open ScottPlot
open SkiaSharp
open Xunit
open Flows.Plotting

[<Fact>]
let ``A heat map puts its brightest pixel where the function peaks`` () =
    let n, window = 101, Window.create -3.0 3.0 -2.0 4.0
    let peakX, peakY = 1.2, 2.5
    let points = (Grid.points n window).toArray64()
    let values = Array.init (n * n) (fun k -> exp (-((points[2 * k] - peakX) ** 2.0 + (points[2 * k + 1] - peakY) ** 2.0)))
    let plot = Panel.heatMap "a bump" window n values
    use bitmap = SKBitmap.Decode(Figure.row "" 500 450 [| plot |] |> Figure.png)
    // inside the data area only: the colour bar holds the brightest colour too
    let area = plot.LastRender.DataRect
    let brightness (x: int) (y: int) = let c = bitmap.GetPixel(x, y) in int c.Red + int c.Green + int c.Blue
    let _, bestX, bestY =
        seq { for y in int area.Top + 1 .. int area.Bottom - 2 do
                for x in int area.Left + 1 .. int area.Right - 2 -> brightness x y, x, y }
        |> Seq.maxBy (fun (b, _, _) -> b)
    let expected = plot.GetPixel(Coordinates(peakX, peakY))
    let cell = area.Width / float32 n
    Assert.True(abs (float32 bestX - expected.X) <= 2.0f * cell + 1.0f && abs (float32 bestY - expected.Y) <= 2.0f * cell + 1.0f,
        $"brightest pixel at ({bestX}, {bestY}), the peak is drawn at ({expected.X}, {expected.Y})")

[<Fact>]
let ``Grid points run along x first, from the window's lowest y`` () =
    let points = (Grid.points 3 (Window.create 0.0 2.0 10.0 14.0)).toArray64()
    let expected = [| for y in [ 10.0; 12.0; 14.0 ] do for x in [ 0.0; 1.0; 2.0 ] do yield! [ x; y ] |]
    Assert.Equal<float[]>(expected, points)

[<Fact>]
let ``A loss curve goes beside the picture`` () =
    Assert.Equal(IO.Path.Combine("out", "two-moons.loss.png"), LossCurve.pathBeside (IO.Path.Combine("out", "two-moons.png")))
    use bitmap = SKBitmap.Decode(Figure.row "" 600 300 [| LossCurve.panel "loss" [| 3.0; 2.0; 1.5; 1.2 |] [| 2, 2.1; 4, 1.4 |] |] |> Figure.png)
    Assert.Equal(600, bitmap.Width)

[<Fact>]
let ``Bad panel arguments are errors naming the argument`` () =
    let named (name: string) (f: unit -> obj) = Assert.Equal(name, (Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)).ParamName)
    let window = Window.square 1.0
    named "values" (fun () -> box (Panel.heatMap "" window 4 (Array.zeroCreate 15)))
    named "n" (fun () -> box (Panel.heatMap "" window 1 [| 0.0 |]))
    named "ys" (fun () -> box (Panel.scatter "" window [| 0.0 |] [||]))
    named "rows" (fun () -> box (Panel.scatterRows "" window [| 0.0; 1.0; 2.0 |]))
    named "bins" (fun () -> box (Panel.histogram "" "" 0.0 1.0 0 [| 0.5 |]))
    named "values" (fun () -> box (Panel.images "" 4 8 8 (Array.zeroCreate 65)))
    named "training" (fun () -> box (LossCurve.panel "" [||] [||]))
    named "bound" (fun () -> box (Window.square -1.0))
    named "x" (fun () -> box (Window.create 1.0 1.0 0.0 1.0))
    named "output" (fun () -> box (LossCurve.pathBeside ""))
