// A bijector written in C# (Flows.CSharp.CustomBijector): checked by the law suite, composed with a
// library coupling layer, trained, saved and loaded back.
using Flows.CSharp;
using Flows.Examples.CustomLayers;

foreach (var line in ElementwiseAffine.CheckAll())
    Console.WriteLine(line);

// rows of a correlated, shifted Gaussian: x1 ~ N(3, 1), x2 = x1 / 2 + N(-1, 0.25)
var random = new Random(7);
double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
var data = new float[2000, 2];
for (int i = 0; i < data.GetLength(0); i++)
{
    data[i, 0] = (float)(3 + Normal());
    data[i, 1] = (float)(data[i, 0] / 2 - 1 + 0.5 * Normal());
}

var model = DensityModel.Compose(new[] { ElementwiseAffine.Correct.Create(2), Layer.AffineCoupling(2, new[] { 16, 16 }, seed: 1), ElementwiseAffine.Correct.Create(2) });
double before = model.LogProb(data).Average();
model = model.Fit(data, new FitOptions(Steps: 300, Standardise: false, GaussianFloor: false, LearningRate: 1e-2, Seed: 1));
double after = model.LogProb(data).Average();

var folder = Path.Combine(Path.GetTempPath(), $"custom-bijector-{Guid.NewGuid():N}");
try
{
    model.Save(folder);
    var loaded = DensityModel.Load(folder);
    bool same = loaded.LogProb(data).SequenceEqual(model.LogProb(data));
    Console.WriteLine($"trained with an affine coupling: mean log p {before:F3} -> {after:F3} nats; saved and loaded: {(same ? "same" : "different")} log-densities");
}
finally
{
    if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
}
