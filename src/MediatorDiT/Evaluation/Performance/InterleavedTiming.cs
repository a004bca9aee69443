using System.Diagnostics;

namespace MediatorDiT.Evaluation.Performance;

/// <summary>
/// Wall times of cases compared with each other, taken in turn round after round (A B A B ...) so that load from other
/// work hits all of them alike, and the medians the benchmarks report: one home for the CPU bench
/// (<see cref="PerformanceSuite"/>) and the device bench, which passes its synchronisation as the settle step.
/// </summary>
internal static class InterleavedTiming
{
    /// <summary>
    /// Runs every case <paramref name="warmups"/> times untimed, then times <paramref name="repeats"/> rounds of them.
    /// <paramref name="settle"/> (e.g. a device synchronisation; null on the CPU) runs after the warm-ups and after every
    /// timed run, inside its time, so a time covers the work the case queued and not only its launch.
    /// </summary>
    /// <returns>Per case, the seconds of each round.</returns>
    public static double[][] Run(int warmups, int repeats, CancellationToken cancel, Action? settle, IReadOnlyList<Action> cases)
    {
        ArgumentNullException.ThrowIfNull(cases);
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "at least one timed run is needed.");
        for (int w = 0; w < warmups; w++)
            foreach (var c in cases)
            {
                cancel.ThrowIfCancellationRequested();
                c();
            }
        settle?.Invoke();
        var samples = cases.Select(_ => new double[repeats]).ToArray();
        for (int r = 0; r < repeats; r++)
            for (int i = 0; i < cases.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                long t0 = Stopwatch.GetTimestamp();
                cases[i]();
                settle?.Invoke();
                samples[i][r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
        return samples;
    }

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) throw new ArgumentException("the median of no values is undefined.", nameof(values));
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
    }

    /// <summary>The median over rounds of time(a) / time(b), for two cases timed together.</summary>
    public static double Ratio(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) throw new ArgumentException($"the cases have {a.Count} and {b.Count} rounds; time them together.");
        return Median(a.Zip(b, (x, y) => x / y).ToArray());
    }
}
