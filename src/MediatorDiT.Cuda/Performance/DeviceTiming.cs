using ILGPU.Runtime;
using MediatorDiT.Evaluation.Performance;

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
    /// work hits all of them alike (<see cref="InterleavedTiming"/>, the CPU bench's, with the accelerator synchronised
    /// after the warm-ups and inside every timed run).
    /// </summary>
    /// <returns>Per case, the seconds of each round.</returns>
    public static double[][] Interleaved(Accelerator accelerator, int warmups, int repeats, CancellationToken cancel, params Action[] cases)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        return InterleavedTiming.Run(warmups, repeats, cancel, accelerator.Synchronize, cases);
    }

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> values) => InterleavedTiming.Median(values);

    /// <summary>The median over rounds of time(a) / time(b), for two cases timed together.</summary>
    public static double Ratio(IReadOnlyList<double> a, IReadOnlyList<double> b) => InterleavedTiming.Ratio(a, b);
}
