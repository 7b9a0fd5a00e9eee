using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;

namespace Flows.Packaging.Tests;

/// <summary>
/// Packs once per test run (from a copy of the sources, so the solution's own build outputs are not
/// touched), with a version of its own so no earlier package in the NuGet cache can stand in for it.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "flows-pack-" + Guid.NewGuid().ToString("N"));
    public string Feed => Path.Combine(Root, "feed");
    public string Version { get; }

    private static readonly string[] Ids = { "flows", "flows.functional", "flows.tensors", "flows.cli" };

    public PackedFeed()
    {
        var repo = RepositoryRoot();
        var sources = Path.Combine(Root, "src-copy");
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props", "LICENSE" })
            CopyFile(Path.Combine(repo, file), Path.Combine(sources, file));
        CopyFolder(Path.Combine(repo, "src"), Path.Combine(sources, "src"));
        CopyFolder(Path.Combine(repo, "examples", "FlowsCli"), Path.Combine(sources, "examples", "FlowsCli"));
        var suffix = "test." + Guid.NewGuid().ToString("N")[..8];
        Version = "0.1.0-" + suffix;
        foreach (var project in new[] { "src/Flows.CSharp/Flows.CSharp.csproj", "examples/FlowsCli/FlowsCli.csproj" })
            Dotnet.Ok(sources, "pack", project, "-c", "Release", "-o", Feed, $"-p:VersionSuffix={suffix}", "-p:RepositoryUrl=https://example.invalid/flows");
        // packing the façade packed only it; its references are packed one by one
        foreach (var project in new[] { "src/Flows.Distributed/Flows.Distributed.fsproj", "src/Flows.Laws/Flows.Laws.fsproj", "src/Flows.Functional/Flows.Functional.fsproj", "src/Flows.Tensors/Flows.Tensors.fsproj" })
            Dotnet.Ok(sources, "pack", project, "-c", "Release", "--no-build", "-o", Feed, $"-p:VersionSuffix={suffix}", "-p:RepositoryUrl=https://example.invalid/flows");
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Flows.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("no Flows.sln above " + AppContext.BaseDirectory);
    }

    private static void CopyFile(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(from, to);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            var top = relative.Split(Path.DirectorySeparatorChar);
            if (top.Contains("bin") || top.Contains("obj")) continue;
            CopyFile(file, Path.Combine(to, relative));
        }
    }

    public void Dispose()
    {
        // the restored copies of this run's packages go too: every run packs a new version
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in Ids)
        {
            var folder = Path.Combine(cache, id, Version);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            var idFolder = Path.Combine(cache, id);
            if (Directory.Exists(idFolder) && !Directory.EnumerateFileSystemEntries(idFolder).Any()) Directory.Delete(idFolder);
        }
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}

[CollectionDefinition("feed")]
public sealed class FeedCollection : ICollectionFixture<PackedFeed>;

[Collection("feed")]
public sealed class PackageTests(PackedFeed feed)
{
    private ZipArchive Open(string id) => ZipFile.OpenRead(Path.Combine(feed.Feed, $"{id}.{feed.Version}.nupkg"));

    [Fact]
    public void Every_package_carries_its_licence_readme_metadata_and_symbols()
    {
        foreach (var id in new[] { "Flows", "Flows.Distributed", "Flows.Functional", "Flows.Laws", "Flows.Tensors", "Flows.Cli" })
        {
            using var package = Open(id);
            var names = package.Entries.Select(e => e.FullName).ToArray();
            Assert.Contains("README.md", names);
            Assert.Contains("LICENSE", names);
            var nuspec = XDocument.Load(package.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
            string Field(string name) => nuspec.Descendants().First(e => e.Name.LocalName == name).Value;
            Assert.Equal("MIT", Field("license"));
            Assert.Equal(feed.Version, Field("version"));
            Assert.Equal("README.md", Field("readme"));
            Assert.False(string.IsNullOrWhiteSpace(Field("authors")));
            Assert.Contains("normalizing-flows", Field("tags"));
            Assert.Equal("https://example.invalid/flows", nuspec.Descendants().First(e => e.Name.LocalName == "repository").Attribute("url")!.Value);
            Assert.True(File.Exists(Path.Combine(feed.Feed, $"{id}.{feed.Version}.snupkg")), $"no symbol package for {id}");
        }
        foreach (var id in new[] { "Flows", "Flows.Distributed", "Flows.Functional", "Flows.Laws", "Flows.Tensors" })
        {
            using var package = Open(id);
            var names = package.Entries.Select(e => e.FullName).ToArray();
            Assert.Contains(names, n => n.StartsWith("lib/net8.0/") && n.EndsWith(".dll"));
            Assert.Contains(names, n => n.StartsWith("lib/net10.0/") && n.EndsWith(".dll"));
            Assert.Contains(names, n => n.StartsWith("lib/net10.0/") && n.EndsWith(".xml"));
        }
        using (var tensors = Open("Flows.Tensors"))
            Assert.Contains("buildTransitive/Flows.Tensors.props", tensors.Entries.Select(e => e.FullName));
        // the C# package brings the rest at the same version: Flows → Flows.Functional → Flows.Tensors,
        // Flows → Flows.Laws (BijectorLaws) → Flows.Functional, Flows → Flows.Distributed (MpiWorld) → Flows.Functional
        foreach (var (id, dependency) in new[] { ("Flows", "Flows.Functional"), ("Flows", "Flows.Laws"), ("Flows", "Flows.Distributed"), ("Flows.Laws", "Flows.Functional"), ("Flows.Distributed", "Flows.Functional"), ("Flows.Functional", "Flows.Tensors") })
        {
            using var package = Open(id);
            var dependencies = XDocument.Load(package.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open())
                .Descendants().Where(e => e.Name.LocalName == "dependency").ToArray();
            Assert.Contains(dependencies, d => d.Attribute("id")!.Value == dependency && d.Attribute("version")!.Value == feed.Version);
        }
    }

    // A console project in a fresh folder that restores Flows from the folder feed.
    private string Consumer(string name, string program)
    {
        var app = Path.Combine(feed.Root, name);
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="flows-local" value="{feed.Feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Flows" Version="{feed.Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), program);
        return app;
    }

    [Fact]
    public void The_README_CSharp_blocks_compile_as_one_program_against_the_package()
    {
        var readme = File.ReadAllText(Path.Combine(PackedFeed.RepositoryRoot(), "README.md"));
        var blocks = System.Text.RegularExpressions.Regex.Matches(readme, "```csharp\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => m.Groups[1].Value).ToArray();
        Assert.True(blocks.Length >= 4, $"expected the quickstart's C# blocks in README.md, found {blocks.Length}");
        var app = Consumer("readme", string.Join("\n", blocks));
        Dotnet.Ok(app, "build", "-c", "Release");
    }

    [Fact]
    public void A_fresh_project_restores_the_package_fits_a_model_and_gets_the_runtime_settings()
    {
        var app = Consumer("consumer", """
            using Flows.CSharp;

            var random = new Random(3);
            var rows = new float[400, 2];
            for (int i = 0; i < 400; i++)
            {
                double a = random.NextDouble() * 2 * Math.PI;
                rows[i, 0] = (float)(2 * Math.Cos(a) + 0.1 * random.NextDouble());
                rows[i, 1] = (float)(2 * Math.Sin(a) + 0.1 * random.NextDouble());
            }
            var model = DensityModel.CreateRealNvp(2, layers: 2, hidden: 16).Fit(rows, new FitOptions { Steps = 50 });
            var logp = model.LogProb(rows);
            Console.WriteLine($"mean-log-density {logp.Average():F4}");
            Console.WriteLine($"samples {model.Sample(5, seed: 1).GetLength(0)}");
            """);
        Dotnet.Ok(app, "build", "-c", "Release");
        var output = Dotnet.Ok(app, "run", "-c", "Release", "--no-build");
        var line = output.Split('\n').Single(l => l.StartsWith("mean-log-density "));
        Assert.True(double.IsFinite(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)), line);
        Assert.Contains("samples 5", output);
        // the buildTransitive props reached the app's runtime configuration
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(app, "bin", "Release", "net10.0", "Consumer.runtimeconfig.json")));
        var options = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.False(options.GetProperty("System.Runtime.TieredCompilation").GetBoolean());
        Assert.Equal(67108864, options.GetProperty("System.GC.LOHThreshold").GetInt32());
    }

    [Fact]
    public void The_tool_package_installs_flows_and_it_reports_the_package_version()
    {
        var tools = Path.Combine(feed.Root, "tools");
        Dotnet.Ok(feed.Root, "tool", "install", "--tool-path", tools, "--add-source", feed.Feed, "--version", feed.Version, "Flows.Cli");
        var (code, output) = Dotnet.Run(feed.Root, Path.Combine(tools, "flows"), "--version");
        Assert.Equal(0, code);
        Assert.StartsWith(feed.Version, output.Trim());
    }
}
