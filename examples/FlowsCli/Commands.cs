using System.CommandLine;

namespace Flows.Cli;

/// <summary>The subcommands: train, logprob, sample, plot, demo. Each parses its options and hands
/// the work to <see cref="Work"/>; nothing here touches a model directly.</summary>
internal static class Commands
{
    public static IEnumerable<Command> All(TextWriter output, TextWriter error, CancellationToken cancel)
    {
        yield return Train(output, error, cancel);
        yield return LogProb(output, cancel);
        yield return Sample(output, cancel);
        yield return Plot(output);
        yield return Demo(output);
    }

    private static Option<string> Path(string name, string description, bool required = true) =>
        new(name) { Description = description, Required = required };

    private static Option<T> Value<T>(string name, string description, T fallback) =>
        new(name) { Description = description, DefaultValueFactory = _ => fallback };

    // --header and --no-header, for every CSV file a command reads.
    private static (Option<bool> Header, Option<bool> NoHeader) HeaderOptions() =>
        (new("--header") { Description = "the first row of every input CSV holds column names" },
         new("--no-header") { Description = "the first row of every input CSV is data (without either flag: a header when none of its cells is a number)" });

    private static HeaderMode HeaderFrom(ParseResult r, (Option<bool> Header, Option<bool> NoHeader) options) =>
        (r.GetValue(options.Header), r.GetValue(options.NoHeader)) switch
        {
            (true, true) => throw new BadInputException("--header and --no-header contradict each other; give one"),
            (true, false) => HeaderMode.Present,
            (false, true) => HeaderMode.Absent,
            _ => HeaderMode.Auto,
        };

    private static Command Train(TextWriter output, TextWriter error, CancellationToken cancel)
    {
        var data = Path("--data", "CSV file of training rows, read as doubles (a first row of names is a header: see --header)");
        var context = Path("--context", "CSV file of context rows, one per data row (conditional flow)", required: false);
        var flow = Value("--flow", "flow family: " + string.Join(", ", FlowKinds.Names), "nsf");
        flow.AcceptOnlyFromAmong(FlowKinds.Names);
        var layers = Value<int?>("--layers", FlowKinds.LayersMeaning, null);
        var hidden = Value<int?>("--hidden", FlowKinds.HiddenMeaning, null);
        var steps = Value<int?>("--steps", "optimiser steps (default: up to 1,000 epochs, at most 10,000 steps, stopped early on validation)", null);
        var batch = Value<int?>("--batch-size", "rows per step (default: clamp(rows / 8, 16, 256), 512 from 50,000 rows)", null);
        var rate = Value("--learning-rate", "AdamW learning rate (weight decay clamp(20 / rows, 1e-4, 0.1) pulls the flow towards the Gaussian)", 1e-3);
        var validation = Value<double?>("--validation", "fraction of rows held out (default: at least 20 % and 50 rows); training stops early on them, and the flow is kept only if it beats a full-covariance Gaussian there beyond noise (0: no validation)", null);
        var seed = Value("--seed", "seed of initial weights, shuffling and the validation split", 0UL);
        var device = Value("--device", "where to train: cpu, cuda or cuda:N", "cpu");
        var outDir = Path("--out", "folder to write the model to (new, empty, or a model folder with --force); checked before training, written atomically; Ctrl+C saves the best model so far there");
        var force = new Option<bool>("--force") { Description = "replace the model already in the --out folder" };
        var plotLoss = Path("--plot-loss", "PNG file to write the loss curve to: training loss per step, and validation loss when rows are held out", required: false);
        var header = HeaderOptions();
        var command = new Command("train", "Fit a normalising flow to the rows of a CSV file (columns are standardised; the model stores that).")
        {
            data, context, flow, layers, hidden, steps, batch, rate, validation, seed, device, outDir, force, plotLoss, header.Header, header.NoHeader,
        };
        command.SetAction(r => Work.Train(output, error, new TrainRequest(
            r.GetValue(data)!, r.GetValue(context), r.GetValue(flow)!, r.GetValue(layers), r.GetValue(hidden),
            r.GetValue(steps), r.GetValue(batch), r.GetValue(rate), r.GetValue(validation), r.GetValue(seed), r.GetValue(device)!, r.GetValue(outDir)!,
            HeaderFrom(r, header), r.GetValue(force), r.GetValue(plotLoss)), cancel));
        return command;
    }

    private static Command LogProb(TextWriter output, CancellationToken cancel)
    {
        var model = Path("--model", "model directory written by 'flows train'");
        var data = Path("--data", "CSV file of rows to score");
        var context = Path("--context", "CSV file of context rows (conditional models)", required: false);
        var outFile = Path("--out", "CSV file to write one log-density (nats) per row to (written whole or not at all)");
        var header = HeaderOptions();
        var command = new Command("logprob", "Score rows: log p(x) in nats, one per row (streamed: any number of rows in bounded memory).")
        {
            model, data, context, outFile, header.Header, header.NoHeader,
        };
        command.SetAction(r => Work.LogProb(output, new LogProbRequest(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(context), r.GetValue(outFile)!, HeaderFrom(r, header)), cancel));
        return command;
    }

    private static Command Sample(TextWriter output, CancellationToken cancel)
    {
        var model = Path("--model", "model directory written by 'flows train'");
        var count = new Option<int>("--count", "-n") { Description = "number of rows to draw", Required = true };
        var context = Path("--context", "CSV file with one context row (every sample is drawn at it) or one per sample", required: false);
        var seed = Value("--seed", "seed of the draw (the same seed gives the same rows)", 0UL);
        var outFile = Path("--out", "CSV file to write the samples to (written whole or not at all)");
        var header = HeaderOptions();
        var command = new Command("sample", "Draw rows from a model (in the data's units), a chunk at a time in bounded memory.")
        {
            model, count, context, seed, outFile, header.Header, header.NoHeader,
        };
        command.SetAction(r => Work.Sample(output, new SampleRequest(r.GetValue(model)!, r.GetValue(count), r.GetValue(context), r.GetValue(seed), r.GetValue(outFile)!, HeaderFrom(r, header)), cancel));
        return command;
    }

    private static Command Plot(TextWriter output)
    {
        var model = Path("--model", "model directory written by 'flows train'");
        var outFile = Value("--out", "PNG file to write", "density.png");
        var resolution = Value("--resolution", "grid points per side of the density heat map (2-D models)", 200);
        var columns = Path("--columns", "columns of a pairwise plot, numbered from 1, comma-separated, at most 8 (default: the first 8)", required: false);
        var command = new Command("plot", "Plot the model's density (2-D) or its pairwise marginals from samples (more columns).") { model, outFile, resolution, columns };
        command.SetAction(r => Work.Plot(output, r.GetValue(model)!, r.GetValue(outFile)!, r.GetValue(resolution), r.GetValue(columns)));
        return command;
    }

    private static Command Demo(TextWriter output)
    {
        var name = new Argument<string>("name") { Description = "which demo: " + string.Join(", ", Demos.Names) };
        name.AcceptOnlyFromAmong(Demos.Names);
        var steps = Value("--steps", "optimiser steps", 0);
        var outFile = Value("--out", "PNG file to write", "");
        var command = new Command("demo", "Run a worked example: train, report, write a PNG.") { name, steps, outFile };
        command.SetAction(r => Demos.Run(output, r.GetValue(name)!, r.GetValue(steps), r.GetValue(outFile)!));
        return command;
    }
}
