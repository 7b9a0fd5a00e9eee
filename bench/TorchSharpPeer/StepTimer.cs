using System.Diagnostics;

/// <summary>Steps per second of a training step, timed as bench/Bench's peer section times ours.</summary>
static class StepTimer
{
    /// <summary>It/s over <paramref name="steps"/> steps after <paramref name="warmup"/> untimed ones.</summary>
    public static double Rate(Action step, int warmup, int steps)
    {
        for (int i = 0; i < warmup; i++) step();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) step();
        return steps / clock.Elapsed.TotalSeconds;
    }

    /// <summary>It/s over about <paramref name="seconds"/> of steps: two warm-up steps, then three timed
    /// ones to size the run (so one command covers batch 128 and 16,384 alike).</summary>
    public static double RateFor(Action step, double seconds)
    {
        var estimate = Rate(step, 2, 3);
        return Rate(step, 0, Math.Clamp((int)(seconds * estimate), 3, 100_000));
    }
}
