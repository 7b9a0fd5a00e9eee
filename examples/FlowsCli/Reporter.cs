using Flows.CSharp;

namespace Flows.Cli;

/// <summary>Progress delivered on the training thread (Progress&lt;T&gt; would post it elsewhere).</summary>
internal sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}
