/// Data-parallel training under mpirun: N ranks follow the run of one process, and a failing rank
/// ends the job without a model.
module Flows.Distributed.Tests.DataParallelTests

open System
open System.IO
open Xunit
open Flows.Distributed.Tests.Launcher

let private losses (folder: string) =
    File.ReadAllLines(Path.Combine(folder, "losses.txt"))
    |> Array.map (fun line -> Double.Parse(line.Split(' ') |> Array.last, Globalization.CultureInfo.InvariantCulture))

[<MpiFact>]
let ``two ranks with shards of an odd table follow one rank's losses and validations for 50 steps`` () =
    let one, two = freshFolder (), freshFolder ()
    try
        let code1, out1 = run 1 [ "--out"; one; "--rows"; "301"; "--steps"; "50" ]
        let code2, out2 = run 2 [ "--out"; two; "--rows"; "301"; "--steps"; "50" ]
        Assert.True((code1 = 0), out1)
        Assert.True((code2 = 0), out2)
        Assert.Contains("training on 2 ranks", out2)
        let a, b = losses one, losses two
        Assert.Equal(50 + 5, a.Length)
        Assert.Equal(a.Length, b.Length)
        for i in 0 .. a.Length - 1 do
            Assert.True(abs (a[i] - b[i]) <= 1e-5 * abs a[i], $"line {i}: one rank {a[i]}, two ranks {b[i]}")
        // and training did something
        Assert.True(a[49] < a[0] - 0.3, $"loss went from {a[0]} to {a[49]}")
    finally
        for f in [ one; two ] do Directory.Delete(f, true)

[<MpiFact>]
let ``the C# facade's FitShard under two ranks fits the model one rank fits`` () =
    let one, two = freshFolder (), freshFolder ()
    try
        for ranks, folder in [ 1, one; 2, two ] do
            let code, output = run ranks [ "--out"; folder; "--rows"; "301"; "--steps"; "40"; "--facade" ]
            Assert.True((code = 0), output)
        let read folder = File.ReadAllLines(Path.Combine(folder, "facade.txt")) |> Array.map (fun v -> Double.Parse(v, Globalization.CultureInfo.InvariantCulture))
        let a, b = read one, read two
        for i in 0 .. 1 do
            Assert.True(abs (a[i] - b[i]) <= 1e-5 * abs a[i], $"figure {i}: one rank {a[i]}, two ranks {b[i]}")
        // the fit moved: after one step the mean log-density of these rows is -1.89, after 40 it is -1.67
        Assert.True(a[0] > -1.8, $"mean log-density {a[0]}")
    finally
        for f in [ one; two ] do Directory.Delete(f, true)

[<MpiFact>]
let ``two ranks train a conditional flow on shards with their contexts and follow one rank for 50 steps`` () =
    let one, two = freshFolder (), freshFolder ()
    try
        let code1, out1 = run 1 [ "--out"; one; "--rows"; "301"; "--steps"; "50"; "--conditional" ]
        let code2, out2 = run 2 [ "--out"; two; "--rows"; "301"; "--steps"; "50"; "--conditional" ]
        Assert.True((code1 = 0), out1)
        Assert.True((code2 = 0), out2)
        let a, b = losses one, losses two
        Assert.Equal(50 + 5, a.Length)
        Assert.Equal(a.Length, b.Length)
        for i in 0 .. a.Length - 1 do
            Assert.True(abs (a[i] - b[i]) <= 1e-5 * abs a[i], $"line {i}: one rank {a[i]}, two ranks {b[i]}")
        Assert.True(a[49] < a[0] - 0.3, $"loss went from {a[0]} to {a[49]}")
    finally
        for f in [ one; two ] do Directory.Delete(f, true)

[<MpiFact>]
let ``the C# facade's FitShard under two ranks fits the conditional model one rank fits`` () =
    let one, two = freshFolder (), freshFolder ()
    try
        for ranks, folder in [ 1, one; 2, two ] do
            let code, output = run ranks [ "--out"; folder; "--rows"; "301"; "--steps"; "40"; "--facade"; "--conditional" ]
            Assert.True((code = 0), output)
        let read folder = File.ReadAllLines(Path.Combine(folder, "facade.txt")) |> Array.map (fun v -> Double.Parse(v, Globalization.CultureInfo.InvariantCulture))
        let a, b = read one, read two
        for i in 0 .. 2 do
            Assert.True(abs (a[i] - b[i]) <= 1e-5 * abs a[i], $"figure {i}: one rank {a[i]}, two ranks {b[i]}")
        // the held-out rows' own contexts explain them: negating the contexts moves each row by 2(c, −c)
        Assert.True(a[0] > a[2] + 1.0, $"mean log-density {a[0]} with the rows' contexts, {a[2]} with them negated")
    finally
        for f in [ one; two ] do Directory.Delete(f, true)

[<MpiFact>]
let ``a rank that throws ends the job with a non-zero exit and leaves no model`` () =
    let folder = freshFolder ()
    try
        let code, output = run 2 [ "--out"; folder; "--steps"; "200"; "--fail-rank"; "1"; "--fail-step"; "5" ]
        Assert.NotEqual(0, code)
        Assert.Contains("rank 1 of 2 failed: rank 1 was told to fail at step 5", output)
        Assert.False(Directory.Exists(Path.Combine(folder, "model")))
    finally
        Directory.Delete(folder, true)

[<MpiFact>]
let ``a rank whose process ends mid-run ends the job with a non-zero exit and leaves no model`` () =
    let folder = freshFolder ()
    try
        let code, output = run 2 [ "--out"; folder; "--steps"; "200"; "--fail-rank"; "1"; "--fail-step"; "5"; "--kill" ]
        Assert.True((code <> 0), output)
        Assert.False(Directory.Exists(Path.Combine(folder, "model")))
    finally
        Directory.Delete(folder, true)
