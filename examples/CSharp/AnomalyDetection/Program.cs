// Anomaly detection with a density model: fit on normal rows, score new ones, flag the rows less likely than
// the 1 % least likely validation rows, and measure precision and recall on a test set with known anomalies.
using Flows.Examples;
using Flows.Examples.AnomalyDetection;

return ExampleArguments.Run(args, argv =>
{
    var options = ExampleArguments.Parse(argv, "steps", "seed");
    Detection.Run(new DetectionSettings(Steps: options.Int("steps", 3000), Seed: options.Seed(3)), Console.Out);
    return 0;
});
