using Flows.Cli;

using var cancellation = new ConsoleCancellation();
return Cli.Run(args, Console.Out, Console.Error, cancellation.Token);
