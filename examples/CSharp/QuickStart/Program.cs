// The README's C# quickstart as a program: fit a table, score, sample, save and load, a conditional flow,
// a density given as a C# function, progress and cancellation. Every figure printed is checked against
// what the data was drawn from.
using Flows.Examples;
using Flows.Examples.QuickStart;

return ExampleArguments.Run(args, argv =>
{
    var options = ExampleArguments.Parse(argv, "steps", "seed", "output");
    var settings = new TourSettings(
        Steps: options.Int("steps", 600),
        Seed: options.Seed(1),
        ModelFolder: options.Text("output") ?? "quickstart-model");
    Tour.Run(settings, Console.Out);
    return 0;
});
