using System.Text.Json.Nodes;
using MediatorDiT.Pipelines;

namespace MediatorDiT.Web;

/// <summary>Where a job is in its life.</summary>
public enum JobState
{
    /// <summary>Waiting behind the running job.</summary>
    Queued,
    /// <summary>Sampling.</summary>
    Running,
    /// <summary>Finished; its images and record can be fetched.</summary>
    Done,
    /// <summary>Stopped by an error (the message says which).</summary>
    Failed,
    /// <summary>Cancelled by its client, or because its client went away.</summary>
    Cancelled,
}

/// <summary>One run of a job and its results: "dynamic" (or the chosen schedule) and, in compare mode, "largest".</summary>
/// <param name="Name">The run's name in URLs and events.</param>
/// <param name="Title">What the page calls it.</param>
/// <param name="Options">The pipeline options of the run.</param>
internal sealed record JobRun(string Name, string Title, GenerationOptions Options)
{
    /// <summary>PNG bytes of each image, by index within the run.</summary>
    public byte[]?[] Images { get; init; } = new byte[Options.NumImages ?? 0][];

    /// <summary>The run record, once the run is done.</summary>
    public GenerationRecord? Record { get; set; }
}

/// <summary>One event of a job's stream: its sequence number, SSE event name and JSON data.</summary>
internal sealed class JobEvent(long sequence, string name, JsonObject data)
{
    public long Sequence { get; } = sequence;
    public string Name { get; } = name;
    public JsonObject Data { get; } = data;
}

/// <summary>
/// A generation job: the request, its runs, its state and the events its clients stream. Events are kept so a
/// client that connects late (or reconnects with Last-Event-ID) sees the whole story; only the newest preview of
/// each batch keeps its images, so a long job's log stays small. Thread-safe: the worker appends, requests read.
/// </summary>
internal sealed class GenerationJob
{
    private readonly object _gate = new();
    private readonly List<JobEvent> _events = [];
    private readonly Dictionary<(string Run, int FirstIndex), JobEvent> _lastPreview = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _watchers;
    private DateTime _lastSeen;

    public GenerationJob(string id, JobRequest request, IReadOnlyList<JobRun> runs, DateTime now)
    {
        Id = id;
        Request = request;
        Runs = runs;
        Created = now;
        _lastSeen = now;
    }

    public string Id { get; }
    public JobRequest Request { get; }
    public IReadOnlyList<JobRun> Runs { get; }
    public DateTime Created { get; }
    public CancellationTokenSource Cancellation { get; } = new();

    public JobState State { get; private set; } = JobState.Queued;

    /// <summary>Place in the queue: 1 = next; 0 once running or finished.</summary>
    public int Position { get; private set; }

    /// <summary>Why a running job is being cancelled (set before its token is cancelled).</summary>
    public string? CancelReason { get; set; }

    /// <summary>Why the job failed or was cancelled.</summary>
    public string? Error { get; private set; }

    /// <summary>Wall seconds from start to end of sampling.</summary>
    public double? WallSeconds { get; set; }

    private JsonObject? _lastStep;

    /// <summary>Where the newest step stands (run, step, stepCount, imagesDone, images), copied under the lock; null before the first step.</summary>
    public JsonObject? Progress()
    {
        lock (_gate)
        {
            if (_lastStep is not { } step) return null;
            var progress = new JsonObject();
            foreach (string key in (string[])["run", "step", "stepCount", "imagesDone", "images"]) progress[key] = step[key]?.DeepClone();
            return progress;
        }
    }

    public bool IsFinished => State is JobState.Done or JobState.Failed or JobState.Cancelled;

    /// <summary>A client touched the job (a request about it); keeps it alive for the client timeout.</summary>
    public void Seen(DateTime now)
    {
        lock (_gate) _lastSeen = now;
    }

    /// <summary>An event stream opened (true) or closed (false).</summary>
    public void Watch(bool open, DateTime now)
    {
        lock (_gate)
        {
            _watchers += open ? 1 : -1;
            _lastSeen = now;
        }
    }

    /// <summary>True when no stream is open and no request came for longer than <paramref name="timeout"/>.</summary>
    public bool IsAbandoned(DateTime now, TimeSpan timeout)
    {
        lock (_gate) return _watchers == 0 && now - _lastSeen > timeout;
    }

    public JobRun? Run(string name) => Runs.FirstOrDefault(r => r.Name == name);

    public void SetPosition(int position)
    {
        lock (_gate)
        {
            if (State != JobState.Queued || Position == position) return;
            Position = position;
            AppendLocked("queued", new JsonObject { ["position"] = position });
        }
    }

    public void SetState(JobState state, string? error = null)
    {
        lock (_gate)
        {
            if (IsFinished) return;
            State = state;
            Position = 0;
            Error = error;
            var data = new JsonObject { ["state"] = Names.Of(state) };
            if (error is not null) data["error"] = error;
            AppendLocked(Names.Of(state), data);
        }
    }

    /// <summary>Appends a step event; a newer preview of the same batch drops the older one's images.</summary>
    public void AddStep(string run, int firstIndex, JsonObject data, bool hasPreview)
    {
        lock (_gate)
        {
            var added = AppendLocked("step", data);
            _lastStep = data;
            if (!hasPreview) return;
            if (_lastPreview.TryGetValue((run, firstIndex), out var older)) older.Data.Remove("previews");
            _lastPreview[(run, firstIndex)] = added;
        }
    }

    public void AddEvent(string name, JsonObject data)
    {
        lock (_gate) AppendLocked(name, data);
    }

    /// <summary>Events from sequence <paramref name="from"/> on (serialised now, under the lock), and whether the job has ended.</summary>
    public (IReadOnlyList<(long Sequence, string Name, string Json)> Events, bool Finished, Task Changed) EventsFrom(long from)
    {
        lock (_gate)
        {
            var list = new List<(long, string, string)>();
            for (int i = (int)Math.Max(0, from); i < _events.Count; i++)
                list.Add((_events[i].Sequence, _events[i].Name, _events[i].Data.ToJsonString()));
            return (list, IsFinished, _changed.Task);
        }
    }

    private JobEvent AppendLocked(string name, JsonObject data)
    {
        var e = new JobEvent(_events.Count, name, data);
        _events.Add(e);
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.SetResult();
        return e;
    }
}

/// <summary>The lower-case names the API uses for states.</summary>
internal static class Names
{
    public static string Of(JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Done => "done",
        JobState.Failed => "failed",
        _ => "cancelled",
    };
}
