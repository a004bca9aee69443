using System.Collections.Concurrent;
using System.Diagnostics;

namespace MediatorDiT.Tensors;

/// <summary>
/// Optional per-operation wall-time accounting for the benchmark's breakdown. Off by default: a disabled
/// <see cref="Time"/> costs one static read. Scopes may nest (attention inside a block), so totals of
/// nested names overlap; scopes opened inside parallel bodies add up thread time, not wall time.
/// </summary>
internal static class OpProfiler
{
    internal sealed class Counter
    {
        public long Ticks, Calls, Bytes;
    }

    private static readonly ConcurrentDictionary<string, Counter> Counters = new();

    /// <summary>Turns timing on or off (benchmarks only; it is never on in normal runs).</summary>
    public static bool Enabled { get; set; }

    /// <summary>
    /// Count the calling thread's CPU time instead of wall time (Linux; elsewhere wall time). On a shared
    /// machine CPU time of a 1-thread run is far steadier than wall time, which includes preemption.
    /// </summary>
    public static bool ThreadCpuTime { get; set; }

    private struct Timespec
    {
        public long Seconds, Nanoseconds;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    private static bool _cpuClockWorks = OperatingSystem.IsLinux();

    /// <summary>Now, in Stopwatch ticks: wall clock, or this thread's CPU clock.</summary>
    internal static long Now()
    {
        if (ThreadCpuTime && _cpuClockWorks)
        {
            try
            {
                if (ClockGetTime(3 /* CLOCK_THREAD_CPUTIME_ID */, out var ts) == 0)
                    return (long)((ts.Seconds * 1_000_000_000.0 + ts.Nanoseconds) * Stopwatch.Frequency / 1e9);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
            _cpuClockWorks = false;
        }
        return Stopwatch.GetTimestamp();
    }

    public readonly struct Scope : IDisposable
    {
        private readonly Counter? _counter;
        private readonly long _start, _allocated;

        internal Scope(Counter counter)
        {
            _counter = counter;
            _allocated = GC.GetAllocatedBytesForCurrentThread();
            _start = Now();
        }

        public void Dispose()
        {
            if (_counter is null) return;
            Interlocked.Add(ref _counter.Ticks, Now() - _start);
            Interlocked.Increment(ref _counter.Calls);
            Interlocked.Add(ref _counter.Bytes, GC.GetAllocatedBytesForCurrentThread() - _allocated);
        }
    }

    /// <summary>Starts timing <paramref name="name"/> until the returned scope is disposed.</summary>
    public static Scope Time(string name) => Enabled ? new Scope(Counters.GetOrAdd(name, _ => new Counter())) : default;

    public static void Reset() => Counters.Clear();

    /// <summary>Accumulated seconds and calls per name, largest first.</summary>
    public static IReadOnlyList<(string Name, double Seconds, long Calls)> Snapshot() =>
        Counters.Select(kv => (kv.Key, (double)kv.Value.Ticks / Stopwatch.Frequency, kv.Value.Calls))
            .OrderByDescending(e => e.Item2).ToList();

    /// <summary>
    /// Managed bytes allocated inside each name's scopes by the thread that opened them (work a scope hands to
    /// other threads is not counted), largest first.
    /// </summary>
    public static IReadOnlyList<(string Name, long Bytes)> AllocationSnapshot() =>
        Counters.Select(kv => (kv.Key, Interlocked.Read(ref kv.Value.Bytes))).OrderByDescending(e => e.Item2).ToList();
}
