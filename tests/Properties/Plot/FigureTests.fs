/// Figure layout: panels laid with `above` and `beside` land at their offsets, with white gaps between.
module Flows.Properties.Plot.FigureTests

open Xunit
open Flows.Plot

[<Fact>]
let ``Panels stacked above each other keep their pixels at their offsets`` () =
    let red = Png.blank 3 2 (255uy, 0uy, 0uy)
    let blue = Png.blank 5 4 (0uy, 0uy, 255uy)
    let stacked = Figure.above [ red; blue ]
    Assert.Equal(5, stacked.Width)
    Assert.Equal(2 + 8 + 4, stacked.Height)
    let pixel x y = let at = 3 * (y * stacked.Width + x) in stacked.Pixels[at], stacked.Pixels[at + 1], stacked.Pixels[at + 2]
    Assert.Equal((255uy, 0uy, 0uy), pixel 2 1)
    Assert.Equal((255uy, 255uy, 255uy), pixel 4 1)
    Assert.Equal((255uy, 255uy, 255uy), pixel 0 5)
    Assert.Equal((0uy, 0uy, 255uy), pixel 4 10)
    Assert.Equal((0uy, 0uy, 255uy), pixel 0 13)

[<Fact>]
let ``Panels side by side keep their pixels at their offsets`` () =
    let red = Png.blank 3 2 (255uy, 0uy, 0uy)
    let blue = Png.blank 5 4 (0uy, 0uy, 255uy)
    let row = Figure.beside [ red; blue ]
    Assert.Equal(3 + 8 + 5, row.Width)
    Assert.Equal(4, row.Height)
    let pixel x y = let at = 3 * (y * row.Width + x) in row.Pixels[at], row.Pixels[at + 1], row.Pixels[at + 2]
    Assert.Equal((255uy, 0uy, 0uy), pixel 2 1)
    Assert.Equal((255uy, 255uy, 255uy), pixel 2 3)
    Assert.Equal((255uy, 255uy, 255uy), pixel 5 0)
    Assert.Equal((0uy, 0uy, 255uy), pixel 11 0)
    Assert.Equal((0uy, 0uy, 255uy), pixel 15 3)
