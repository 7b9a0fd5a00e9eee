namespace Flows.Plotting

open System
open System.IO
open ScottPlot

/// Training and validation loss against the optimiser step.
[<RequireQualifiedAccess>]
module LossCurve =

    /// Where an example's loss curve goes: beside its picture, `name.png` → `name.loss.png`.
    let pathBeside (output: string) =
        if String.IsNullOrWhiteSpace output then invalidArg (nameof output) "LossCurve.pathBeside: the output path is empty"
        Path.ChangeExtension(output, null) + ".loss.png"

    // The mean of each window of `width` steps ending at the step (a trailing moving average).
    let private smoothed (width: int) (values: float[]) =
        let sums = Array.scan (+) 0.0 values
        Array.init values.Length (fun i -> let from = max 0 (i + 1 - width) in (sums[i + 1] - sums[from]) / float (i + 1 - from))

    // The finite points (step, value) of a series; steps count from 1.
    let private finite (steps: float[]) (values: float[]) =
        Array.zip steps values |> Array.filter (snd >> Double.IsFinite) |> Array.unzip

    /// The per-step training loss (light), its moving average over 2% of the steps (dark) and the
    /// validation loss at the steps it was measured (red); the title gives the units. The y range
    /// leaves out the first 5% of steps, whose large losses would flatten the rest.
    let panel (title: string) (training: float[]) (validation: (int * float)[]) =
        if training.Length = 0 then invalidArg (nameof training) "LossCurve.panel: no training losses"
        let steps = Array.init training.Length (fun i -> float (i + 1))
        let trainX, trainY = finite steps training
        let width = max 1 (training.Length / 50)
        let average = smoothed width trainY
        let validX, validY = finite (validation |> Array.map (fst >> float)) (validation |> Array.map snd)
        let series =
            [ if width > 1 then
                  { X = trainX; Y = trainY; Colour = "#aec7e8"; Label = "training (per step)" }
                  { X = trainX; Y = average; Colour = "#1f77b4"; Label = $"training (mean of {width} steps)" }
              else
                  { X = trainX; Y = trainY; Colour = "#1f77b4"; Label = "training" }
              if validX.Length > 0 then { X = validX; Y = validY; Colour = "#d62728"; Label = "validation" } ]
        let plot = Panel.lines title "step" "loss" series
        // a dot at each check: validation may be measured only a few times
        if validX.Length > 0 then
            let dots = plot.Add.ScatterPoints(validX, validY)
            dots.Color <- Color.FromHex "#d62728"
            dots.MarkerSize <- 6.0f
        let skip = training.Length / 20
        let shown = Array.append (Array.zip trainX average |> Array.filter (fun (x, _) -> x > float skip) |> Array.map snd) validY
        let shown = if shown.Length > 0 then shown else average
        if shown.Length > 0 then
            let low, high = Array.min (Array.append shown trainY), Array.max shown
            let margin = max (0.05 * (high - low)) 1e-3
            plot.Axes.SetLimitsY(low - margin, high + margin)
        plot.Axes.SetLimitsX(0.0, float training.Length + 1.0)
        plot

    /// Writes the loss curve (`panel`) as a 900 × 450 PNG to `path`.
    let save (path: string) (title: string) (training: float[]) (validation: (int * float)[]) =
        Figure.row "" 900 450 [| panel title training validation |] |> Figure.save path

    /// Writes several loss curves (title, training losses, validation losses) as one PNG, three to a row.
    let saveAll (path: string) (curves: (string * float[] * (int * float)[])[]) =
        if curves.Length = 0 then invalidArg (nameof curves) "LossCurve.saveAll: no curves"
        let panels = curves |> Array.map (fun (title, training, validation) -> panel title training validation)
        let columns = min 3 panels.Length
        Figure.create "" 600 380 (panels |> Array.chunkBySize columns) |> Figure.save path
