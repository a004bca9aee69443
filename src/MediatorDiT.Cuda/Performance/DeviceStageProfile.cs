using System.Diagnostics;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Performance;

/// <summary>
/// Where a device forward or training step spends its time, by stage (embeddings, each block's parts, the attention
/// core, the linear layers' products apart from their bf16 rounding, the backward's parts, the optimiser): attached to
/// a model's kernels, it waits for the accelerator at every stage boundary and adds the wall time since the last
/// boundary to the stage that was running. Those waits cost a few microseconds each and stop the queue from running
/// ahead, so a profiled run is somewhat slower than an unprofiled one (report both); off (null) it costs nothing.
/// There is no kernel profiler on every machine this runs on (nor on ILGPU's CPU accelerator), hence this.
/// </summary>
public sealed class DeviceStageProfile
{
    private readonly Accelerator _accelerator;
    private readonly Dictionary<string, Stage> _stages = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly Stopwatch _clock = new();
    private string _current = Unattributed;
    private TimeSpan _last;

    /// <summary>The stage of time before the first scope is entered (uploads, launches outside any scope).</summary>
    public const string Unattributed = "outside any stage";

    /// <summary>A profile of the work queued on <paramref name="accelerator"/>.</summary>
    public DeviceStageProfile(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        _accelerator = accelerator;
    }

    /// <summary>One stage's totals: wall seconds, times entered, and the FLOPs the caller counted for it.</summary>
    public sealed record Stage(string Name)
    {
        /// <summary>Wall seconds attributed to the stage.</summary>
        public double Seconds { get; internal set; }

        /// <summary>Times the stage was entered.</summary>
        public int Calls { get; internal set; }

        /// <summary>FLOPs counted for it (2 per multiply-accumulate of its matrix products; 0 where none were counted).</summary>
        public double Flops { get; internal set; }
    }

    /// <summary>The stages in order of first entry.</summary>
    public IReadOnlyList<Stage> Stages => _order.Select(n => _stages[n]).ToArray();

    /// <summary>Wall seconds between <see cref="Start"/> and the last boundary.</summary>
    public double TotalSeconds => _stages.Values.Sum(s => s.Seconds);

    /// <summary>Waits for the queue and starts the clock afresh, clearing earlier totals.</summary>
    public void Start()
    {
        _accelerator.Synchronize();
        _stages.Clear();
        _order.Clear();
        _current = Unattributed;
        _clock.Restart();
        _last = TimeSpan.Zero;
    }

    /// <summary>Waits for the queue and attributes the time since the last boundary to the running stage (call before reading the totals).</summary>
    public void Stop() => Switch(_current, 0, count: false);

    /// <summary>
    /// Enters <paramref name="stage"/> (counting <paramref name="flops"/> for it) until the scope is disposed, when the
    /// stage that ran before resumes. A null profile gives a scope that does nothing.
    /// </summary>
    public static Scope Enter(DeviceStageProfile? profile, string stage, double flops = 0)
    {
        if (profile is null) return default;
        string outer = profile._current;
        profile.Switch(stage, flops, count: true);
        return new Scope(profile, outer);
    }

    /// <summary>The running stage's name (the products nest their own stages under it).</summary>
    public string Current => _current;

    private void Switch(string next, double flops, bool count)
    {
        _accelerator.Synchronize();
        var now = _clock.Elapsed;
        Get(_current).Seconds += (now - _last).TotalSeconds;
        _last = now;
        _current = next;
        if (!count) return;
        var entered = Get(next);
        entered.Calls++;
        entered.Flops += flops;
    }

    private Stage Get(string name)
    {
        if (!_stages.TryGetValue(name, out var stage))
        {
            _stages[name] = stage = new Stage(name);
            _order.Add(name);
        }
        return stage;
    }

    /// <summary>A stage entered by <see cref="Enter"/>; disposing it returns to the stage that ran before.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly DeviceStageProfile? _profile;
        private readonly string _outer;

        internal Scope(DeviceStageProfile profile, string outer) => (_profile, _outer) = (profile, outer);

        /// <summary>Ends the stage: the time since the last boundary is its; the outer stage runs again.</summary>
        public void Dispose() => _profile?.Switch(_outer, 0, count: false);
    }
}
