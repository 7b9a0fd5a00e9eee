/// Figure layout: panels stacked with `above` land at their rows, with white gaps between.
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
