using Flows.CSharp;

// SaveLoop FOLDER: saves model A, then B, A, B, ... to FOLDER until killed, printing "saved" once
// after the first save (only once: nobody needs to drain the pipe while it runs). A and B are the models SaveLoopModels builds (the tests build the same ones).
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: SaveLoop FOLDER");
    return 2;
}
var models = new[] { SaveLoopModels.A(), SaveLoopModels.B() };
for (long i = 0; ; i++)
{
    models[i % 2].Save(args[0]);
    if (i == 0)
    {
        Console.Out.WriteLine("saved");
        Console.Out.Flush();
    }
}

/// <summary>The two models the loop alternates between: same architecture, different weights.</summary>
public static class SaveLoopModels
{
    public static DensityModel A() => DensityModel.CreateRealNvp(4, layers: 4, hidden: 64, seed: 1);

    public static DensityModel B() => DensityModel.CreateRealNvp(4, layers: 4, hidden: 64, seed: 2);
}
