using System.Diagnostics;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Performance;

/// <summary>
/// Wall times of work queued on an accelerator: every run is followed by a synchronisation, so a time covers the
/// device work it queued and not only the launches. Shared by `mdit bench --device` and the device check.
/// </summary>
public static class DeviceTiming
{
    /// <summary>
    /// Runs <paramref name="warmups"/> untimed calls (kernels compiled, buffers allocated), then times
    /// <paramref name="repeats"/> calls; run receives the call's index (0 .. warmups + repeats - 1).
    /// </summary>
    /// <returns>The timed seconds, in order.</returns>
    public static double[] Time(Accelerator accelerator, int warmups, int repeats, Action<int> run, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        int call = 0;
        return Interleaved(accelerator, warmups, repeats, cancel, () => run(call++))[0];
    }

    /// <summary>
    /// Warms every case up, then times the cases in turn, round after round (A B A B ...), so that load from other
    /// work hits all of them alike.
    /// </summary>
    /// <returns>Per case, the seconds of each round.</returns>
    public static double[][] Interleaved(Accelerator accelerator, int warmups, int repeats, CancellationToken cancel, params Action[] cases)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        ArgumentNullException.ThrowIfNull(cases);
        if (repeats < 1) throw new ArgumentOutOfRangeException(nameof(repeats), repeats, "at least one timed run is needed.");
        for (int w = 0; w < warmups; w++)
            foreach (var c in cases)
            {
                cancel.ThrowIfCancellationRequested();
                c();
            }
        accelerator.Synchronize();
        var samples = cases.Select(_ => new double[repeats]).ToArray();
        for (int r = 0; r < repeats; r++)
            for (int i = 0; i < cases.Length; i++)
            {
                cancel.ThrowIfCancellationRequested();
                long t0 = Stopwatch.GetTimestamp();
                cases[i]();
                accelerator.Synchronize();
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
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
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
