// A Bayesian posterior fitted by reverse KL: logistic regression on generated data with a Gaussian prior, the
// target written as a C# function of differentiable Rows, checked against a long random-walk Metropolis run
// (posterior means and standard deviations) and against importance sampling from a Gaussian (log evidence).
using Flows.Examples;
using Flows.Examples.Posterior;

return ExampleArguments.Run(args, argv =>
{
    var options = ExampleArguments.Parse(argv, "steps", "seed");
    PosteriorStudy.Run(new PosteriorSettings(Steps: options.Int("steps", 1500), Seed: options.Seed(5)), Console.Out);
    return 0;
});
