using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// One sampling run's binding of a ladder, its schedule and its log: builds the initial state in the
/// official layout (under guidance [z; z] with labels [y; null]), asks the schedule which model serves
/// each sample at each step, evaluates, and counts FLOPs. Everything is validated in the constructor,
/// before any network call.
/// </summary>
internal sealed class LadderRun
{
    private readonly ModelLadder _ladder;
    private readonly IModelScheduleRun _schedule;
    private readonly int _stepCount;
    private readonly IProgress<SamplingProgress>? _progress;
    private readonly CancellationToken _cancellation;
    private int[]? _models;

    public BatchLayout Layout { get; }

    /// <summary>Labels per state row (rows).</summary>
    public int[] Labels { get; }

    /// <summary>The initial state (rows, C, H, W).</summary>
    public Tensor InitialState { get; }

    public ModelUsageLog Log { get; }

    public LadderRun(ModelLadder ladder, Tensor z, ReadOnlySpan<int> y, IModelSchedule? schedule, int stepCount,
        IProgress<SamplingProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(ladder);
        ladder.ValidateInitialNoise(z, y.Length);
        ladder.ValidateLabels(y);
        int samples = z.Dim(0);
        Layout = new BatchLayout(samples, ladder.RowsPerSample);
        var shape = (int[])z.Shape.Clone();
        shape[0] = Layout.Rows;
        InitialState = new Tensor(shape);
        Labels = new int[Layout.Rows];
        for (int copy = 0; copy < Layout.RowsPerSample; copy++)
        {
            z.Span.CopyTo(InitialState.Span.Slice(copy * z.Length, z.Length));
            for (int s = 0; s < samples; s++) Labels[Layout.Row(s, copy)] = copy == 0 ? y[s] : ladder.NumClasses;
        }
        if (schedule is null && ladder.Count > 1)
            throw new MediatorDiTException(
                $"a ladder of {ladder.Count} models needs a schedule (adaptive or fixed) to choose the model of each step.");
        schedule ??= FixedModelSchedule.Only(0);
        _schedule = schedule.Start(new ScheduleContext(ladder.Count, Layout, stepCount))
                    ?? throw new MediatorDiTException("the model schedule returned no run state.");
        _ladder = ladder;
        _stepCount = stepCount;
        _progress = progress;
        _cancellation = cancellation;
        Log = new ModelUsageLog(samples);
    }

    /// <summary>Fixes the models of the coming step; true when they differ from the previous step's.</summary>
    public bool BeginStep()
    {
        _cancellation.ThrowIfCancellationRequested();
        var models = new int[Layout.Samples];
        for (int s = 0; s < models.Length; s++)
        {
            int m = _schedule.ModelOf(s);
            if (m < 0 || m >= _ladder.Count)
                throw new MediatorDiTException($"the model schedule chose model index {m} for sample {s}, outside the ladder of {_ladder.Count} models.");
            models[s] = m;
        }
        bool changed = _models is null || !models.AsSpan().SequenceEqual(_models);
        _models = models;
        Log.BeginStep(models);
        return changed;
    }

    /// <summary>The prediction (rows, C, H, W) at state x and time t for every row.</summary>
    public Tensor Evaluate(Tensor x, float t)
    {
        _cancellation.ThrowIfCancellationRequested();
        var models = _models ?? throw new InvalidOperationException("BeginStep must precede Evaluate.");
        var times = new float[Layout.Rows];
        Array.Fill(times, t);
        var prediction = _ladder.Evaluate(x, times, Labels, models);
        Log.AddEvaluation(models, _ladder.FlopsPerImage);
        return prediction;
    }

    /// <summary>Lets the schedule see the step (unless it was the last) and reports progress.</summary>
    public void EndStep(int step, Tensor previous, Tensor current)
    {
        if (step < _stepCount - 1) _schedule.Observe(new StepObservation(step, previous, current, Layout));
        _progress?.Report(new SamplingProgress(step + 1, _stepCount, Log.Evaluations, Log.MeanFlopsPerImage)
        {
            State = current,
            ModelPerSample = _models,
        });
    }

    /// <summary>The samples (B, C, H, W): the first (conditional) copy of each sample's rows.</summary>
    public Tensor SamplesOf(Tensor state)
    {
        var shape = (int[])state.Shape.Clone();
        shape[0] = Layout.Samples;
        var samples = new Tensor(shape);
        state.Span[..samples.Length].CopyTo(samples.Span);
        return samples;
    }
}
