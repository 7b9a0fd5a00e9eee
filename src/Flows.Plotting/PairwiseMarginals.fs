namespace Flows.Plotting

open System

/// Pairwise marginals of samples with many columns: histograms on the diagonal, scatter plots off it,
/// on standardised columns; the number of columns shown and the page size are bounded, whatever the
/// column count, so 200 columns cost no more than 8.
[<RequireQualifiedAccess>]
module PairwiseMarginals =

    /// At most this many columns are shown: more panels would be too small to read.
    let maxColumns = 8

    /// The page is at most this many pixels on a side.
    let maxSide = 1600

    /// At most this many points in a scatter panel (enough to show the shape, quick to draw).
    let maxPoints = 2000

    let private standardised (x: float[]) =
        let mean = Array.average x
        let scale = sqrt (x |> Array.averageBy (fun v -> (v - mean) * (v - mean)))
        x |> Array.map (fun v -> (v - mean) / (if scale > 0.0 then scale else 1.0))

    /// The figure of the given columns of `rows` (samples [n][d]), named by `names` (one per column of
    /// the data); `shown` are column indices, at most `maxColumns` of them.
    let figure (names: string[]) (shown: int[]) (rows: float[][]) =
        if isNull rows || rows.Length < 2 then invalidArg (nameof rows) "PairwiseMarginals: expected at least 2 rows"
        let d = rows[0].Length
        if rows |> Array.exists (fun r -> r.Length <> d) then invalidArg (nameof rows) $"PairwiseMarginals: every row must have {d} columns"
        if names.Length <> d then invalidArg (nameof names) $"PairwiseMarginals: expected {d} names, one per column, got {names.Length}"
        if shown.Length < 1 || shown.Length > maxColumns then
            invalidArg (nameof shown) $"PairwiseMarginals: expected 1 to {maxColumns} columns to show, got {shown.Length}"
        match shown |> Array.tryFind (fun j -> j < 0 || j >= d) with
        | Some j -> invalidArg (nameof shown) $"PairwiseMarginals: column {j} is not in [0, {d - 1}]"
        | None -> ()
        let k = shown.Length
        let columns = shown |> Array.map (fun j -> standardised (rows |> Array.map (fun r -> r[j])))
        let stride = max 1 (rows.Length / maxPoints)
        let thin (x: float[]) = Array.init (min x.Length maxPoints) (fun i -> x[i * stride])
        let window = Window.square 3.5
        let panels =
            Array.init k (fun i ->
                Array.init k (fun j ->
                    let plot =
                        if i = j then Panel.histogram names[shown[i]] "" -3.5 3.5 40 columns[i]
                        else Panel.scatter "" window (thin columns[j]) (thin columns[i])
                    // names on the outer edges only; inner panels keep their ticks
                    plot.XLabel(if i = k - 1 then names[shown[j]] else "") |> ignore
                    plot.YLabel(if j = 0 then names[shown[i]] else "") |> ignore
                    plot))
        let side = max 50 (min 300 (maxSide / k))
        let which =
            if k = d then $"all {d} columns"
            else String.Join(", ", shown |> Array.map (fun j -> names[j])) + $" ({k} of {d} columns)"
        Figure.create $"pairwise marginals of {rows.Length:N0} samples, standardised: {which}" side side panels

    /// The first `maxColumns` columns (or all, when fewer).
    let firstColumns (d: int) = Array.init (min d maxColumns) id
