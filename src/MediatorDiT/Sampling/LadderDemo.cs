using System.Diagnostics;
using MediatorDiT.Diffusion;
using MediatorDiT.Evaluation;
using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// The library side of `mdit demo`: samples <see cref="LadderDemoOptions.PerClass"/> images of every class
/// with a mediator ladder under the step-wise dynamic schedule (one batch, decided on the batch mean),
/// then the same noise and labels with the ladder's largest model alone, times both, and scores each
/// with a classifier (class agreement: the fraction whose most probable class is the requested one).
/// Before timing, every model is evaluated once so that neither run pays for JIT compilation.
/// </summary>
public static class LadderDemo
{
    public static LadderDemoResult Run(ModelLadder ladder, ImageClassifier classifier, LadderDemoOptions options,
        IProgress<LadderDemoProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ladder);
        ArgumentNullException.ThrowIfNull(classifier);
        options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        if (ladder.Count < 2)
            throw new MediatorDiTException($"the demo compares a ladder of at least 2 models with its largest one, got {ladder.Count} model.");
        if (classifier.Config.NumClasses != ladder.NumClasses)
            throw new MediatorDiTException($"the classifier knows {classifier.Config.NumClasses} classes but the ladder {ladder.NumClasses}; give a classifier of the ladder's dataset.");
        var ratios = options.RatiosFor(ladder.Count);
        var schedule = new AdaptiveModelSchedule(ratios, options.First, StateDistance.MeanAbsolute, DecisionScope.BatchMean);
        var largest = new ModelLadder([ladder.Stages[^1]], [ladder.FlopsPerImage[^1]], ladder.NumClasses, ladder.SampleShape);
        var sampler = new SdeSampler(new Transport(), new SdeSamplerOptions { NumSteps = options.Steps }.Validate());
        int[] labels = Enumerable.Range(0, ladder.NumClasses).SelectMany(c => Enumerable.Repeat(c, options.PerClass)).ToArray();
        var evaluator = new SampleEvaluator(classifier);

        WarmUp(ladder);
        var dynamic = Sample("dynamic", ladder, schedule, sampler, labels, options.Seed, evaluator, progress, cancellationToken);
        var alone = Sample("largest", largest, null, sampler, labels, options.Seed, evaluator, progress, cancellationToken);
        return new LadderDemoResult(options, ratios, labels, ladder.FlopsPerImage, dynamic, alone);
    }

    private static LadderDemoRun Sample(string name, ModelLadder ladder, IModelSchedule? schedule, SdeSampler sampler, int[] labels, ulong seed,
        SampleEvaluator evaluator, IProgress<LadderDemoProgress>? progress, CancellationToken cancellationToken)
    {
        // The same generator state for both runs: identical initial noise z and identical per-step draws.
        var rng = new RandomSource(seed);
        var shape = ladder.SampleShape;
        var z = new Tensor(labels.Length, shape[0], shape[1], shape[2]);
        rng.FillGaussian(z.Span);
        var stepProgress = progress is null ? null : new Forward(s => progress.Report(new LadderDemoProgress(name, s.StepsDone, s.StepCount)));
        var clock = Stopwatch.StartNew();
        var result = sampler.Sample(ladder, z, labels, new GaussianNoiseSource(rng), schedule, progress: stepProgress, cancellationToken: cancellationToken);
        double seconds = clock.Elapsed.TotalSeconds;
        var outputs = evaluator.Extract(result.Samples, cancellationToken);
        return new LadderDemoRun(result.Samples, result.Usage, seconds, ClassAgreement.Compute(outputs, labels));
    }

    /// <summary>One call of each model on one sample, so the timed runs do not include JIT compilation.</summary>
    private static void WarmUp(ModelLadder ladder)
    {
        var shape = ladder.SampleShape;
        int rows = ladder.RowsPerSample;
        var x = new Tensor(rows, shape[0], shape[1], shape[2]);
        float[] t = Enumerable.Repeat(0.5f, rows).ToArray();
        int[] y = Enumerable.Repeat(0, rows).ToArray();
        foreach (var stage in ladder.Stages) stage.Evaluate(x, t, y);
    }

    /// <summary>Reports synchronously on the sampling thread.</summary>
    private sealed class Forward(Action<SamplingProgress> report) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress value) => report(value);
    }
}
