using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using MediatorDiT.Data;
using MediatorDiT.IO;
using MediatorDiT.Pipelines;

namespace MediatorDiT.Web;

/// <summary>
/// The server's one worker and its queue: jobs run one at a time on the pipeline's device, in the order they came;
/// the others wait and are told their place. A full queue refuses new jobs (429). A watchdog cancels jobs whose
/// client went away (no event stream open and no request for <see cref="ServerOptions.ClientTimeout"/>), and
/// finished jobs beyond <see cref="ServerOptions.MaxKeptJobs"/> are forgotten, oldest first. Results live in
/// memory only: no request reads or writes a file.
/// </summary>
internal sealed class JobQueue : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly DiffusionPipeline _pipeline;
    private readonly ServerOptions _options;
    private readonly ServedModel _model;
    private readonly object _gate = new();
    private readonly LinkedList<GenerationJob> _waiting = new();
    private readonly Dictionary<string, GenerationJob> _jobs = [];
    private readonly Queue<GenerationJob> _finished = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _worker;
    private readonly Timer _watchdog;
    private GenerationJob? _running;

    public JobQueue(DiffusionPipeline pipeline, ServerOptions options, ServedModel model)
    {
        _pipeline = pipeline;
        _options = options;
        _model = model;
        _worker = new Thread(Work) { IsBackground = true, Name = "mdit serve worker" };
        _worker.Start();
        var period = TimeSpan.FromMilliseconds(Math.Clamp(options.ClientTimeout.TotalMilliseconds / 4, 20, 1000));
        _watchdog = new Timer(_ => CancelAbandoned(), null, period, period);
    }

    /// <summary>Queues a job for the request, or throws a 429 <see cref="RequestRejectedException"/> when the queue is full.</summary>
    public GenerationJob Submit(JobRequest request)
    {
        var main = request.ToOptions(_options.PreviewEvery);
        List<JobRun> runs = [new JobRun(request.Compare ? "dynamic" : "main", Title(request.Schedule), main)];
        if (request.Compare) runs.Add(new JobRun("largest", $"{_model.Models[^1]} alone", main with { Schedule = new ScheduleChoice.Single() }));
        lock (_gate)
        {
            if (_running is not null && _waiting.Count >= _options.MaxQueue)
                throw new RequestRejectedException(429, null,
                    $"the queue is full: {_waiting.Count} jobs are waiting (the limit is {_options.MaxQueue}); try again when one has finished.");
            var job = new GenerationJob(NewId(), request, runs, DateTime.UtcNow);
            _jobs[job.Id] = job;
            _waiting.AddLast(job);
            RenumberLocked();
            StartNextLocked();
            return job;
        }
    }

    public GenerationJob? Find(string id)
    {
        lock (_gate) return _jobs.GetValueOrDefault(id);
    }

    /// <summary>The running job's id and the number of waiting jobs.</summary>
    public (string? Running, int Waiting) Snapshot()
    {
        lock (_gate) return (_running?.Id, _waiting.Count);
    }

    /// <summary>Cancels a queued or running job; false when it had already finished.</summary>
    public bool Cancel(GenerationJob job, string reason)
    {
        lock (_gate)
        {
            if (job.IsFinished) return false;
            if (job.State == JobState.Queued)
            {
                _waiting.Remove(job);
                job.SetState(JobState.Cancelled, reason);
                FinishLocked(job);
                RenumberLocked();
                return true;
            }
            job.CancelReason = reason;
        }
        job.Cancellation.Cancel();
        return true;
    }

    private void CancelAbandoned()
    {
        var now = DateTime.UtcNow;
        List<GenerationJob> gone;
        lock (_gate) gone = _jobs.Values.Where(j => !j.IsFinished && j.IsAbandoned(now, _options.ClientTimeout)).ToList();
        foreach (var job in gone) Cancel(job, "its client went away.");
    }

    private void Work()
    {
        while (true)
        {
            try
            {
                _signal.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                lock (_gate) _running?.SetState(JobState.Cancelled, "the server stopped.");
                return;
            }
            GenerationJob job;
            lock (_gate) job = _running!;
            Execute(job);
            lock (_gate)
            {
                _running = null;
                FinishLocked(job);
                StartNextLocked();
            }
        }
    }

    private void Execute(GenerationJob job)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            foreach (var run in job.Runs)
            {
                job.AddEvent("run", new JsonObject
                {
                    ["run"] = run.Name,
                    ["title"] = run.Title,
                    ["images"] = run.Images.Length,
                    ["labels"] = new JsonArray(Enumerable.Range(0, run.Images.Length).Select(i => (JsonNode)run.Options.LabelOf(i, _pipeline.NumClasses)).ToArray()),
                });
                var progress = new InlineProgress<GenerationProgress>(p => job.AddStep(run.Name, p.Indices.Count > 0 ? p.Indices[0] : 0, StepEvent(run, p), p.Preview is not null));
                run.Record = _pipeline.Run(run.Options, batch =>
                {
                    for (int k = 0; k < batch.Indices.Count; k++) run.Images[batch.Indices[k]] = Png(batch.Images, k);
                }, progress, job.Cancellation.Token);
                job.AddEvent("result", Result(job, run));
            }
            job.WallSeconds = clock.Elapsed.TotalSeconds;
            job.SetState(JobState.Done);
        }
        catch (OperationCanceledException)
        {
            job.SetState(JobState.Cancelled, job.CancelReason ?? "cancelled.");
        }
        catch (MediatorDiTException e)
        {
            job.SetState(JobState.Failed, e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"mdit serve: job {job.Id} failed: {e}");
            job.SetState(JobState.Failed, $"internal error ({e.GetType().Name}: {e.Message}).");
        }
    }

    private JsonObject StepEvent(JobRun run, GenerationProgress p)
    {
        var data = new JsonObject
        {
            ["run"] = run.Name,
            ["indices"] = new JsonArray(p.Indices.Select(i => (JsonNode)i).ToArray()),
            ["step"] = p.Step,
            ["stepCount"] = p.StepCount,
            ["imagesDone"] = p.ImagesDone,
            ["images"] = p.Images,
            ["models"] = new JsonArray(p.ModelPerImage.Select(m => (JsonNode)m).ToArray()),
            ["gflops"] = Math.Round(p.MeanGflopsPerImage, 6),
        };
        if (p.Preview is { } preview)
            data["previews"] = new JsonArray(Enumerable.Range(0, preview.Dim(0))
                .Select(k => (JsonNode)("data:image/png;base64," + Convert.ToBase64String(Png(preview, k)))).ToArray());
        return data;
    }

    /// <summary>The run's summary: its record's figures and each image's class, cost, switch steps and URL.</summary>
    internal JsonObject Result(GenerationJob job, JobRun run)
    {
        var record = run.Record!;
        return new JsonObject
        {
            ["run"] = run.Name,
            ["title"] = run.Title,
            ["sampler"] = record.Sampler,
            ["steps"] = record.Steps,
            ["schedule"] = record.Schedule,
            ["meanGflopsPerImage"] = record.MeanGflopsPerImage,
            ["largestModelGflopsPerImage"] = record.LargestModelGflopsPerImage,
            ["flopsSaving"] = record.FlopsSaving,
            ["wallSeconds"] = record.WallSeconds,
            ["images"] = new JsonArray(record.Images.Select(i => (JsonNode)new JsonObject
            {
                ["index"] = i.Index,
                ["label"] = i.Label,
                ["class"] = _model.Classes[i.Label],
                ["gflops"] = i.Gflops,
                ["firstStepOfModel"] = new JsonArray(i.FirstStepOfModel.Select(s => (JsonNode)s).ToArray()),
                ["url"] = $"/api/jobs/{job.Id}/runs/{run.Name}/images/{i.Index}.png",
            }).ToArray()),
        };
    }

    /// <summary>The downloadable record: the request and each run's full pipeline record.</summary>
    internal JsonObject Record(GenerationJob job)
    {
        var r = job.Request;
        return new JsonObject
        {
            ["id"] = job.Id,
            ["state"] = Names.Of(job.State),
            ["request"] = new JsonObject
            {
                ["classes"] = new JsonArray(r.Labels.Select(l => (JsonNode)_model.Classes[l]).ToArray()),
                ["images"] = r.Images,
                ["steps"] = r.Steps,
                ["guidance"] = r.Guidance,
                ["seed"] = r.Seed,
                ["schedule"] = Title(r.Schedule),
                ["compare"] = r.Compare,
            },
            ["wallSeconds"] = job.WallSeconds,
            ["runs"] = new JsonArray(job.Runs.Where(run => run.Record is not null).Select(run => (JsonNode)new JsonObject
            {
                ["run"] = run.Name,
                ["title"] = run.Title,
                ["record"] = JsonSerializer.SerializeToNode(run.Record, Json),
            }).ToArray()),
        };
    }

    private string Title(ScheduleChoice schedule)
    {
        var inv = CultureInfo.InvariantCulture;
        if (!_model.IsLadder) return _model.Models[0];
        return schedule switch
        {
            ScheduleChoice.Single s => $"{_model.Models[s.Index < 0 ? _model.Models.Count + s.Index : s.Index]} alone",
            ScheduleChoice.Fixed f => "switch at " + string.Join(", ", f.SwitchFractions.Select(v => v.ToString("0.###", inv))),
            ScheduleChoice.Dynamic d => "dynamic, ratios " + string.Join(", ", (d.Ratios ?? _model.DefaultRatios).Select(v => v.ToString("0.###", inv)))
                                        + $", first {d.First ?? _model.DefaultFirst}",
            _ => "schedule",
        };
    }

    private static byte[] Png(MediatorDiT.Tensors.Tensor images, int index) => PngEncoder.Encode(ImageConversion.ToImage(images, index));

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>
    /// Promotes the first waiting job to running when nothing runs, under the lock, so that a job's state and the
    /// queue's counts never show a job that has been handed to the worker but not yet taken: what waits is exactly
    /// what <see cref="ServerOptions.MaxQueue"/> limits. The worker is woken once per promoted job.
    /// </summary>
    private void StartNextLocked()
    {
        if (_running is not null || _waiting.First?.Value is not { } next) return;
        _waiting.RemoveFirst();
        _running = next;
        next.SetState(JobState.Running);
        RenumberLocked();
        _signal.Release();
    }

    private void RenumberLocked()
    {
        int position = 1;
        foreach (var job in _waiting) job.SetPosition(position++);
    }

    private void FinishLocked(GenerationJob job)
    {
        _finished.Enqueue(job);
        while (_finished.Count > _options.MaxKeptJobs) _jobs.Remove(_finished.Dequeue().Id);
    }

    public void Dispose()
    {
        _watchdog.Dispose();
        lock (_gate)
        {
            foreach (var job in _waiting) job.SetState(JobState.Cancelled, "the server stopped.");
            _waiting.Clear();
            if (_running is { } running)
            {
                running.CancelReason = "the server stopped.";
                running.Cancellation.Cancel();
            }
        }
        _stop.Cancel();
        _worker.Join(TimeSpan.FromSeconds(30));
    }
}

/// <summary>Reports on the calling thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
