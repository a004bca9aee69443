using MediatorDiT.Evaluation;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Pipelines;

/// <summary>
/// The library side of `mdit demo`: samples <see cref="LadderDemoOptions.PerClass"/> images of every class
/// with a pipeline's mediator ladder under the step-wise dynamic schedule (one batch, decided on the batch
/// mean), then the same noise and labels with the ladder's largest model alone, times both, and scores each
/// with a classifier (class agreement: the fraction whose most probable class is the requested one).
/// Before timing, every model is evaluated once so that neither run pays for JIT compilation.
/// </summary>
public static class LadderDemo
{
    /// <summary>Runs both schedules on the same noise and labels and scores them.</summary>
    /// <param name="pipeline">A pipeline of at least 2 models.</param>
    /// <param name="classifier">A classifier of the ladder's dataset (same class count).</param>
    /// <param name="options">Images per class, steps, schedule and seed.</param>
    /// <param name="progress">Receives a report per sampler step.</param>
    /// <param name="cancellationToken">Stops between steps.</param>
    /// <exception cref="MediatorDiTException">An option is invalid, the ladder has one model, or the class counts differ.</exception>
    public static LadderDemoResult Run(DiffusionPipeline pipeline, ImageClassifier classifier, LadderDemoOptions options,
        IProgress<LadderDemoProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(classifier);
        options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        if (pipeline.Models.Count < 2)
            throw new MediatorDiTException($"the demo compares a ladder of at least 2 models with its largest one, got {pipeline.Models.Count} model.");
        if (classifier.Config.NumClasses != pipeline.NumClasses)
            throw new MediatorDiTException($"the classifier knows {classifier.Config.NumClasses} classes but the ladder {pipeline.NumClasses}; give a classifier of the ladder's dataset.");
        int[] labels = Enumerable.Range(0, pipeline.NumClasses).SelectMany(c => Enumerable.Repeat(c, options.PerClass)).ToArray();
        var generation = new GenerationOptions
        {
            Labels = labels, NumImages = labels.Length, BatchSize = labels.Length, Sampler = SamplerKind.Sde, Steps = options.Steps,
            Seed = options.Seed, Schedule = new ScheduleChoice.Dynamic(options.Ratios, options.First, StateDistance.MeanAbsolute, DecisionScope.BatchMean),
        };
        var (schedule, description) = pipeline.CreateSchedule(generation);
        var adaptive = (AdaptiveModelSchedule)schedule!;
        if (adaptive.ReferenceSteps + 1 >= options.Steps)
            throw new MediatorDiTException($"--first {adaptive.ReferenceSteps} leaves no step to switch in with --steps {options.Steps}; use fewer reference steps or more time points.");
        string source = description[(description.LastIndexOf('(') + 1)..^1];
        var evaluator = new SampleEvaluator(classifier);

        pipeline.WarmUp(generation);
        // Both runs draw every image's noise from the same per-image generators: identical z and per-step draws.
        var dynamic = Sample("dynamic", pipeline, generation, labels, evaluator, progress, cancellationToken);
        var alone = Sample("largest", pipeline, generation with { Schedule = new ScheduleChoice.Single(-1) }, labels, evaluator, progress, cancellationToken);
        var flops = pipeline.LadderFor(generation).FlopsPerImage;
        return new LadderDemoResult(options, adaptive.SwitchRatios, adaptive.ReferenceSteps, source, labels, flops, dynamic, alone);
    }

    private static LadderDemoRun Sample(string name, DiffusionPipeline pipeline, GenerationOptions generation, int[] labels,
        SampleEvaluator evaluator, IProgress<LadderDemoProgress>? progress, CancellationToken cancellationToken)
    {
        var stepProgress = progress is null ? null : new SyncProgress<GenerationProgress>(s => progress.Report(new LadderDemoProgress(name, s.Step, s.StepCount)));
        GeneratedBatch? batch = null;
        var record = pipeline.Run(generation, b => batch = b, stepProgress, cancellationToken);
        var outputs = evaluator.Extract(batch!.Images, cancellationToken);
        return new LadderDemoRun(batch.Images, batch.Usage, record.WallSeconds, ClassAgreement.Compute(outputs, labels));
    }
}
