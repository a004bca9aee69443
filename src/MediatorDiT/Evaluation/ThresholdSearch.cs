using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Evaluation;

/// <summary>
/// Budget-aware search for the switch ratios of the step-wise dynamic mediator schedule
/// (<see cref="AdaptiveModelSchedule"/>): runs every point of the authors' grid (<see cref="ThresholdGrid"/>)
/// on one fixed seed set (same initial noise, labels and noise stream for every point), and reports each
/// point's mean GFLOPs per image and a quality score. All runs of a seed batch share the trajectory up to
/// their first differing switch, so with <see cref="ThresholdSearchOptions.ShareTrajectories"/> each shared
/// prefix is evaluated once (<see cref="SharedEvaluationCache"/>); the results equal independent runs bit
/// for bit. The largest model alone is run on the same seeds as the cost baseline and the proxy's reference.
/// </summary>
public sealed class ThresholdSearch
{
    /// <summary>The models the schedules switch between (at least 2).</summary>
    public ModelLadder Ladder { get; }
    /// <summary>The sampler every run uses.</summary>
    public ISampler Sampler { get; }
    /// <summary>The validated settings.</summary>
    public ThresholdSearchOptions Options { get; }

    /// <summary>A search over <paramref name="ladder"/>'s switch ratios with <paramref name="sampler"/>.</summary>
    /// <param name="ladder">A ladder of at least 2 models.</param>
    /// <param name="sampler">The sampler; it needs enough steps for the reference and at least one decision.</param>
    /// <param name="options">Seed set, reference steps, distance, sharing; null: the defaults.</param>
    /// <exception cref="MediatorDiTException">An option is invalid, the ladder is too small or the sampler has too few steps.</exception>
    public ThresholdSearch(ModelLadder ladder, ISampler sampler, ThresholdSearchOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(ladder);
        ArgumentNullException.ThrowIfNull(sampler);
        Options = (options ?? new ThresholdSearchOptions()).Validate();
        if (ladder.Count < 2)
            throw new MediatorDiTException($"a threshold search needs a ladder of at least 2 models, got {ladder.Count}.");
        // Decisions come after steps F + 1 .. StepCount - 2 (the last step decides nothing).
        if (Options.ReferenceSteps + 3 > sampler.StepCount)
            throw new MediatorDiTException(
                $"the reference spans {Options.ReferenceSteps} steps but a run has only {sampler.StepCount}; no switch could happen. Use more steps or fewer reference steps.");
        Ladder = ladder;
        Sampler = sampler;
        ladder.ValidateLabels(SeedSet.Labels(Options.Samples, Options.Labels, ladder.NumClasses));
    }

    /// <summary>The grid for this ladder.</summary>
    public IReadOnlyList<ThresholdPair> Grid => ThresholdGrid.For(Ladder.Count);

    /// <summary>
    /// A lower bound on any schedule's mean GFLOPs per image: every evaluation of a run on the cheapest
    /// model (an SDE run's evaluation count is fixed; an ODE run makes at least one per step).
    /// </summary>
    public double LowerBoundGflopsPerImage =>
        Ladder.FlopsPerImage.Min() * ((Sampler as SdeSampler)?.EvaluationsPerRun ?? Sampler.StepCount) / 1e9;

    /// <summary>Sweeps the whole grid and scores it with the proxy (default: <see cref="SampleScorers.ReferenceDistance"/>).</summary>
    public ThresholdSearchResult Search(SampleScorerFactory? proxy = null, IProgress<ThresholdSearchProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var runs = Sweep(Grid, Options.Samples, "sweep", progress, cancellationToken);
        return Score(runs, proxy ?? SampleScorers.ReferenceDistance, cancellationToken);
    }

    /// <summary>Scores every run of a sweep with a scorer built for its seed set.</summary>
    public static ThresholdSearchResult Score(SweepRuns runs, SampleScorerFactory factory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(factory);
        var scorer = factory(runs.LargestModelSamples, runs.Labels);
        var pairs = runs.Runs.Select(r => new PairResult(r.Pair, r.GflopsPerImage, scorer.Score(r.Samples, runs.Labels, cancellationToken),
            r.MeanSwitchStep, r.SwitchedFraction)).ToArray();
        var frontier = ParetoFrontier.Of(pairs.Select(p => p.GflopsPerImage).ToArray(), pairs.Select(p => p.Score).ToArray());
        return new ThresholdSearchResult(pairs, frontier, scorer.Name, runs.LargestModelGflopsPerImage, runs.Labels.Length,
            runs.NetworkCalls, runs.RequestedCalls);
    }

    /// <summary>
    /// Runs <paramref name="pairs"/> and the largest model alone on the first <paramref name="samples"/>
    /// samples of the seed set, batch by batch (each batch is one decision unit).
    /// </summary>
    public SweepRuns Sweep(IReadOnlyList<ThresholdPair> pairs, int samples, string phase = "sweep",
        IProgress<ThresholdSearchProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) throw new MediatorDiTException("the sweep was given no threshold pairs.");
        foreach (var pair in pairs)
            if (pair.Ratios.Count != Ladder.Count - 1)
                throw new MediatorDiTException($"threshold pair {pair} has {pair.Ratios.Count} ratios but a ladder of {Ladder.Count} models needs {Ladder.Count - 1}.");
        var schedules = pairs.Select(p => (IModelSchedule)new AdaptiveModelSchedule(p.Ratios, Options.ReferenceSteps, Options.Distance)).ToArray();
        var largestOnly = FixedModelSchedule.Only(Ladder.Count - 1);

        var cache = new SharedEvaluationCache();
        var ladder = Options.ShareTrajectories ? Ladder.WithStages(cache.Wrap) : Ladder;
        var shape = Ladder.SampleShape;
        var pairSamples = pairs.Select(_ => new Tensor(samples, shape[0], shape[1], shape[2])).ToArray();
        var flops = new double[pairs.Count];
        int switches = Ladder.Count - 1;
        var switchStepSum = new double[pairs.Count, switches];
        var switchCount = new int[pairs.Count, switches];
        var reference = new Tensor(samples, shape[0], shape[1], shape[2]);
        double referenceFlops = 0;
        long independentCalls = 0, calls = 0;
        var labels = SeedSet.Labels(samples, Options.Labels, Ladder.NumClasses);
        int batches = (samples + Options.BatchSize - 1) / Options.BatchSize, runsDone = 0, runsTotal = batches * (pairs.Count + 1);

        foreach (var batch in SeedSet.Batches(Ladder, samples, Options.BatchSize, Options.Seed, Options.Labels, Sampler.DrawCount))
        {
            cache.Clear();
            int offset = batch.Indices[0] * (reference.Length / samples);
            var baseline = Run(ladder, batch, largestOnly, cancellationToken);
            baseline.Samples.Span.CopyTo(reference.Span[offset..]);
            referenceFlops += baseline.Usage.FlopsPerImage.Sum();
            Count(baseline.Usage);
            for (int p = 0; p < pairs.Count; p++)
            {
                var result = Run(ladder, batch, schedules[p], cancellationToken);
                result.Samples.Span.CopyTo(pairSamples[p].Span[offset..]);
                var usage = result.Usage;
                flops[p] += usage.FlopsPerImage.Sum();
                for (int s = 0; s < usage.SampleCount; s++)
                for (int i = 1; i <= switches; i++)
                {
                    int step = FirstStepAtOrAbove(usage, i, s);
                    if (step < 0) continue;
                    switchStepSum[p, i - 1] += step;
                    switchCount[p, i - 1]++;
                }
                Count(usage);
            }

            void Count(ModelUsageLog usage)
            {
                independentCalls += usage.NetworkCalls;
                calls = Options.ShareTrajectories ? cache.NetworkCalls : independentCalls;
                progress?.Report(new ThresholdSearchProgress(phase, ++runsDone, runsTotal, calls, independentCalls));
            }
        }

        var runs = new PairRun[pairs.Count];
        for (int p = 0; p < pairs.Count; p++)
        {
            var meanStep = new double[switches];
            var fraction = new double[switches];
            for (int i = 0; i < switches; i++)
            {
                meanStep[i] = switchCount[p, i] > 0 ? switchStepSum[p, i] / switchCount[p, i] : double.NaN;
                fraction[i] = switchCount[p, i] / (double)samples;
            }
            runs[p] = new PairRun(pairs[p], pairSamples[p], flops[p] / samples / 1e9, meanStep, fraction);
        }
        return new SweepRuns(runs, reference, referenceFlops / samples / 1e9, labels, calls, independentCalls);
    }

    /// <summary>One run of a seed batch: its z, labels and recorded draws (none for deterministic samplers).</summary>
    private SamplingResult Run(ModelLadder ladder, SeedBatch batch, IModelSchedule schedule, CancellationToken cancellationToken) =>
        Sampler.Sample(ladder, batch.Z, batch.Labels, batch.Draws is { } draws ? new ReplayNoiseSource(draws) : NoNoiseSource.Instance,
            schedule, cancellationToken: cancellationToken);

    /// <summary>The first step at which <paramref name="sample"/> was served by a model of index &gt;= <paramref name="model"/>, or -1.</summary>
    private static int FirstStepAtOrAbove(ModelUsageLog usage, int model, int sample)
    {
        for (int k = 0; k < usage.StepCount; k++)
            if (usage.ModelAt(k, sample) >= model) return k;
        return -1;
    }
}
