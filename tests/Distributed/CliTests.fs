/// `mpirun -np 2 flows train`: one model from two ranks' shards, written once by rank 0; a bad table
/// ends the job with the bad-input code and no model.
module Flows.Distributed.Tests.CliTests

open System
open System.IO
open Xunit
open Flows.Distributed.Tests.Launcher

// A two-column table with a header: a correlated Gaussian, so a fit has something to learn.
let private table (folder: string) (rows: int) =
    let path = Path.Combine(folder, "table.csv")
    let random = Random 3
    let normal () = sqrt (-2.0 * log (1.0 - random.NextDouble())) * cos (2.0 * Math.PI * random.NextDouble())
    File.WriteAllLines(path, [| yield "height,weight"; for _ in 1 .. rows -> let a = normal () in FormattableString.Invariant $"{a},{0.8 * a + 0.6 * normal ()}" |])
    path

[<MpiFact>]
let ``flows train under two ranks trains one model that rank 0 writes and flows can use`` () =
    let folder = freshFolder ()
    try
        let model = Path.Combine(folder, "model")
        let code, output = runProgram "flows.dll" 2 [ "train"; "--data"; table folder 1001; "--out"; model; "--steps"; "60"; "--flow"; "realnvp" ]
        Assert.True((code = 0), output)
        Assert.StartsWith("training on 2 ranks", output.TrimStart())
        // one summary, from rank 0
        Assert.Equal(1, output.Split("ran every step").Length - 1 + output.Split("stopped early").Length - 1)
        Assert.True(File.Exists(Path.Combine(model, "model.json")))
        let loaded = Flows.CSharp.DensityModel.Load model
        Assert.Equal<string>([ "height"; "weight" ], loaded.ColumnNames)
        // the fit learnt the correlation: the density is higher on the diagonal than across it
        let logp = loaded.LogProb(array2D [ [ 1.0f; 0.8f ]; [ 1.0f; -0.8f ] ])
        Assert.True(logp[0] > logp[1] + 1.0f, $"log p on the diagonal {logp[0]}, across it {logp[1]}")
    finally
        Directory.Delete(folder, true)

// Rows (c + 0.3 n₁, −c + 0.3 n₂) in one file and their contexts c ~ N(0, 1) in another, both with a header.
let private conditionalTable (folder: string) (rows: int) =
    let random = Random 5
    let normal () = sqrt (-2.0 * log (1.0 - random.NextDouble())) * cos (2.0 * Math.PI * random.NextDouble())
    let drawn = Array.init rows (fun _ -> let c = normal () in c, c + 0.3 * normal (), -c + 0.3 * normal ())
    let data, context = Path.Combine(folder, "rows.csv"), Path.Combine(folder, "context.csv")
    File.WriteAllLines(data, [| yield "x1,x2"; for _, a, b in drawn -> FormattableString.Invariant $"{a},{b}" |])
    File.WriteAllLines(context, [| yield "c"; for c, _, _ in drawn -> FormattableString.Invariant $"{c}" |])
    data, context

[<MpiFact>]
let ``flows train --context under two ranks trains a conditional model whose samples move with the context`` () =
    let folder = freshFolder ()
    try
        let data, context = conditionalTable folder 1001
        let model = Path.Combine(folder, "model")
        let code, output = runProgram "flows.dll" 2 [ "train"; "--data"; data; "--context"; context; "--out"; model; "--steps"; "300"; "--flow"; "realnvp" ]
        Assert.True((code = 0), output)
        Assert.StartsWith("training on 2 ranks", output.TrimStart())
        Assert.Contains("given 1 context column of", output)
        let loaded = Flows.CSharp.DensityModel.Load model
        Assert.Equal(1, loaded.ContextDimension)
        // E[x | c] = (c, −c): the samples' means at c = ±1 are 2 apart, in opposite directions
        let mean (c: float32) j = let s = loaded.Sample(2000, [| c |], 7UL) in Seq.averageBy (fun i -> float s[i, j]) (seq { 0 .. 1999 })
        let shift1, shift2 = mean 1.0f 0 - mean -1.0f 0, mean 1.0f 1 - mean -1.0f 1
        Assert.True(abs (shift1 - 2.0) < 0.4 && abs (shift2 + 2.0) < 0.4, $"sample means moved by ({shift1}, {shift2}) from c = −1 to c = 1; the data's move by (2, −2)")
    finally
        Directory.Delete(folder, true)

[<MpiFact>]
let ``a bad table under two ranks ends the job with the bad-input code and no model`` () =
    let folder = freshFolder ()
    try
        let data = Path.Combine(folder, "bad.csv")
        File.WriteAllLines(data, [| "a,b"; "1,2"; "3,x" |])
        let model = Path.Combine(folder, "model")
        let code, output = runProgram "flows.dll" 2 [ "train"; "--data"; data; "--out"; model; "--steps"; "10" ]
        Assert.Equal(2, code)
        Assert.Contains("failed:", output)
        Assert.False(Directory.Exists model)
    finally
        Directory.Delete(folder, true)

[<MpiFact>]
let ``a context CSV shorter than the data under two ranks ends the job with the bad-input code and no model`` () =
    let folder = freshFolder ()
    try
        let data, context = conditionalTable folder 101
        File.WriteAllLines(context, File.ReadAllLines context |> Array.take 51)
        let model = Path.Combine(folder, "model")
        let code, output = runProgram "flows.dll" 2 [ "train"; "--data"; data; "--context"; context; "--out"; model; "--steps"; "10" ]
        Assert.Equal(2, code)
        Assert.Contains("has 50 rows, ", output)
        Assert.Contains("its data row 51 has no context row", output)
        Assert.False(Directory.Exists model)
    finally
        Directory.Delete(folder, true)
