/// Figures written to disk: a PNG of the size asked for, decoded back with SkiaSharp; the pairwise
/// marginals of 200 columns within the pixel budget, quickly; bad sizes rejected by name.
module Flows.Properties.Plotting.FigureTests

open System
open System.Diagnostics
open System.IO
open SkiaSharp
open Xunit
open Flows.Plotting

let private decode (path: string) =
    use bitmap = SKBitmap.Decode path
    Assert.NotNull bitmap
    bitmap.Width, bitmap.Height

let private temporaryPng () = Path.Combine(Path.GetTempPath(), $"flows-figure-{Guid.NewGuid():N}.png")

let private line () = Panel.lines "a line" "t" "y" [ { X = [| 0.0; 1.0 |]; Y = [| 0.0; 1.0 |]; Colour = "#1f77b4"; Label = "" } ]

[<Fact>]
let ``A saved figure is a PNG of the requested size`` () =
    let path = temporaryPng ()
    try
        Figure.row "" 300 200 [| line (); line () |] |> Figure.save path
        Assert.Equal((600, 200), decode path)
        Figure.create "with a title" 250 150 [| [| line () |]; [| line () |] |] |> Figure.save path
        let width, height = decode path
        Assert.Equal(250, width)
        Assert.True(height > 300, $"a title line sits above the two panels, got height {height}")
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName path, Path.GetFileName path + ".*.tmp"))
    finally
        File.Delete path

[<Fact>]
let ``The pairwise marginals of 200 columns stay within the pixel budget and draw quickly`` () =
    let random = Random 3
    let rows = Array.init 3000 (fun _ -> Array.init 200 (fun _ -> random.NextDouble()))
    let names = Array.init 200 (fun j -> $"c{j + 1}")
    let clock = Stopwatch.StartNew()
    let figure = PairwiseMarginals.figure names (PairwiseMarginals.firstColumns 200) rows
    let path = temporaryPng ()
    try
        Figure.save path figure
        let width, height = decode path
        Assert.True(width <= PairwiseMarginals.maxSide && height <= PairwiseMarginals.maxSide + 40, $"{width} × {height} pixels")
        Assert.Equal(Figure.size figure, (width, height))
        Assert.True(FileInfo(path).Length < 5_000_000L, $"{FileInfo(path).Length} bytes")
        Assert.True(clock.Elapsed.TotalSeconds < 60.0, $"took {clock.Elapsed.TotalSeconds:F1} s")
        Assert.Contains("8 of 200 columns", figure.Title)
    finally
        File.Delete path

[<Fact>]
let ``Bad figure arguments are errors naming the argument`` () =
    let named (name: string) (f: unit -> obj) = Assert.Equal(name, (Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)).ParamName)
    named "panelWidth" (fun () -> box (Figure.row "" 10 200 [| line () |]))
    named "panelHeight" (fun () -> box (Figure.row "" 200 0 [| line () |]))
    named "rows" (fun () -> box (Figure.create "" 200 200 [||]))
    named "rows" (fun () -> box (Figure.create "" 4000 4000 [| [| line (); line () |] |]))
    named "path" (fun () -> box (Figure.save " " (Figure.row "" 200 200 [| line () |])))
    let rows = Array.init 10 (fun i -> [| float i; float (i * i) |])
    named "shown" (fun () -> box (PairwiseMarginals.figure [| "a"; "b" |] (Array.init 9 (fun _ -> 0)) rows))
    named "shown" (fun () -> box (PairwiseMarginals.figure [| "a"; "b" |] [| 0; 2 |] rows))
    named "names" (fun () -> box (PairwiseMarginals.figure [| "a" |] [| 0 |] rows))
