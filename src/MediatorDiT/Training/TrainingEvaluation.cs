using System.Numerics.Tensors;
using MediatorDiT.Data;
using MediatorDiT.Evaluation;
using MediatorDiT.Pipelines;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Training;

/// <summary>
/// Sample quality measured while a run trains (config <c>eval_every</c>): every so many steps, N images from the
/// largest member of the EMA weights and of the raw weights, drawn as <c>mdit sample --seed S --num-images N --steps T</c>
/// draws them (SiT's SDE, Euler, no guidance, labels 0, 1, 2, ... cycled), are scored against reference statistics
/// (for a built-in dataset: its shipped classifier and test split, as <c>mdit eval</c> scores). The loss flattens long
/// before the samples stop improving and does not say which of the two weights samples better; this does.
/// </summary>
public sealed class TrainingEvaluation
{
    /// <summary>The two sets of weights scored, by the names of <c>mdit export --weights</c>.</summary>
    public static IReadOnlyList<string> WeightNames { get; } = ["ema", "model"];

    /// <summary>One score: the step, which weights ("ema" or "model") and the metrics.</summary>
    public sealed record Entry(long Step, string Weights, QualityReport Report);

    /// <summary>Scores images against <paramref name="reference"/> (computed with <paramref name="evaluator"/>).</summary>
    public TrainingEvaluation(SampleEvaluator evaluator, ReferenceStatistics reference, int samples, int samplingSteps, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        ArgumentNullException.ThrowIfNull(reference);
        if (samples <= evaluator.Options.K)
            throw new MediatorDiTException($"eval_samples must exceed the metrics' k = {evaluator.Options.K}, got {samples}.");
        if (samplingSteps < 1) throw new MediatorDiTException($"eval_steps must be positive, got {samplingSteps}.");
        Evaluator = evaluator;
        Reference = reference;
        Samples = samples;
        SamplingSteps = samplingSteps;
        Seed = seed;
    }

    /// <summary>The classifier and metric settings that score the images.</summary>
    public SampleEvaluator Evaluator { get; }
    /// <summary>The real images' statistics the samples are scored against.</summary>
    public ReferenceStatistics Reference { get; }
    /// <summary>Images per score.</summary>
    public int Samples { get; }
    /// <summary>SDE time points of each sample.</summary>
    public int SamplingSteps { get; }
    /// <summary>The seed of the noise: the same images' noise at every step of the run.</summary>
    public ulong Seed { get; }

    /// <summary>
    /// The evaluation of a run config: its built-in dataset's shipped classifier and test split (the reference
    /// statistics are extracted once and cached beside the dataset). Other datasets have no classifier to score with.
    /// </summary>
    public static TrainingEvaluation ForDataset(TrainConfig config, IProgress<string>? messages = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!BuiltInDataset.All.Any(d => d.Name == config.Dataset))
            throw new MediatorDiTException(
                $"eval_every scores samples with a built-in dataset's classifier ({string.Join(", ", BuiltInDataset.All.Select(d => d.Name))}), but the dataset is '{config.Dataset}'; set eval_every to 0.");
        var evaluator = SampleEvaluator.ForDataset(config.Dataset);
        var reference = evaluator.Reference(config.Dataset, DatasetSplit.Test, config.DataDir, messages, cancellationToken);
        return new TrainingEvaluation(evaluator, reference, config.EvalSamples, config.EvalSteps);
    }

    /// <summary>Scores the largest member of the EMA and of the raw network (host weights, current).</summary>
    public IReadOnlyList<Entry> Evaluate(TrainableNetwork ema, TrainableNetwork network, long step, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ema);
        ArgumentNullException.ThrowIfNull(network);
        var options = new GenerationOptions
        {
            NumImages = Samples, Sampler = SamplerKind.Sde, Steps = SamplingSteps, Seed = Seed, BatchSize = Math.Min(Samples, 100), Decode = false,
        };
        var entries = new List<Entry>(2);
        foreach (var (name, weights) in WeightNames.Zip([ema, network]))
        {
            // A pipeline sets its models up for sampling (one shared block of activations, its compute context); the
            // raw network goes on training with backward, so its member is given back as it was.
            var member = weights.Members[^1];
            (bool keep, ComputeContext? compute) = (member.KeepActivations, member.Compute);
            GenerationResult generated;
            try
            {
                generated = DiffusionPipeline.FromModels([member], compute: SamplingCompute).Generate(options, cancellationToken: cancellationToken);
            }
            finally
            {
                member.KeepActivations = keep;
                member.Compute = compute;
            }
            // As `mdit sample` writes images: clamped to [-1, 1].
            var images = generated.Samples;
            TensorPrimitives.Max(images.Span, -1f, images.Span);
            TensorPrimitives.Min(images.Span, 1f, images.Span);
            int[] labels = generated.Record.Images.Select(r => r.Label).ToArray();
            entries.Add(new Entry(step, name, Evaluator.Evaluate(images, labels, Reference, cancellationToken)));
        }
        return entries;
    }

    // The run's threads and GEMM backend on the CPU: the host weights are current (the trainer syncs them first), and a
    // device run's scoring samples on the host rather than hold a second copy of the network on the device.
    private static ComputeContext SamplingCompute => ComputeContext.Current with { Device = ComputeDevice.Cpu, DeviceIndex = 0 };

    /// <summary>How the log and the plot name a set of weights: "EMA weights" or "raw weights".</summary>
    public static string DisplayName(string weights) => weights == "ema" ? "EMA weights" : "raw weights";

    /// <summary>The line a run prints for an entry.</summary>
    public static string Describe(Entry entry)
    {
        var r = entry.Report;
        string agreement = r.ClassAgreement is double a ? FormattableString.Invariant($", class agreement {a:F3}") : "";
        return FormattableString.Invariant(
            $"step {entry.Step}: {DisplayName(entry.Weights)}, {r.Count} samples: FID {r.Fid:F2}, precision {r.Precision:F3}, recall {r.Recall:F3}{agreement}");
    }
}
