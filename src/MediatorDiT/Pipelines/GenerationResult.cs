using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Pipelines;

/// <summary>One generated image's record: its global index, label, the first step each ladder model served it (-1: never) and its cost.</summary>
public sealed record ImageRecord(int Index, int Label, IReadOnlyList<int> FirstStepOfModel, double Gflops);

/// <summary>
/// One batch as it is generated: the global image indices, labels, the images (B, C, H, W) in [-1, 1] (decoded
/// when the model makes latents and the pipeline has a VAE, else the samples themselves), the raw samples, and
/// each image's record, and which ladder model served each image at each step.
/// </summary>
public sealed record GeneratedBatch(IReadOnlyList<int> Indices, IReadOnlyList<int> Labels, Tensor Images, Tensor Samples,
    IReadOnlyList<ImageRecord> Records, ModelUsageLog Usage);

/// <summary>
/// The typed run record: the sampler, steps, schedule, guidance, the images of this rank, the wall time, the mean
/// cost per image and the largest model's cost alone (both in GFLOPs, multiply-accumulates as docs/FLOPS.md
/// counts them), and every image's record.
/// </summary>
public sealed record GenerationRecord
{
    /// <summary>Where each model came from, cheapest first.</summary>
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary>The model family, "SiT" or "DiT".</summary>
    public required string Family { get; init; }
    /// <summary>Each model's mediator count (0 for full attention).</summary>
    public required IReadOnlyList<int> Mediators { get; init; }
    /// <summary>The sampler's description, e.g. "sde euler 50".</summary>
    public required string Sampler { get; init; }
    /// <summary>Network-evaluating steps of each sampler run.</summary>
    public required int Steps { get; init; }
    /// <summary>The schedule in words, e.g. "one model", "m64 alone" or the dynamic ratios and their source.</summary>
    public required string Schedule { get; init; }
    /// <summary>Classifier-free guidance scale (1: none).</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>Guided channels: a count, "all", or null without guidance.</summary>
    public required object? GuidedChannels { get; init; }

    /// <summary>Side of the images in pixels.</summary>
    public required int ImageSize { get; init; }
    /// <summary>The run's seed.</summary>
    public required ulong Seed { get; init; }
    /// <summary>This process's rank.</summary>
    public required int Rank { get; init; }
    /// <summary>Processes sharing the run.</summary>
    public required int WorldSize { get; init; }
    /// <summary>Images this rank generated.</summary>
    public required int ImageCount { get; init; }
    /// <summary>Wall time of the run in seconds.</summary>
    public required double WallSeconds { get; init; }
    /// <summary>Mean GFLOPs (multiply-accumulates) the schedule spent per image.</summary>
    public required double MeanGflopsPerImage { get; init; }

    /// <summary>What the largest model alone spends per image over the same steps.</summary>
    public required double LargestModelGflopsPerImage { get; init; }

    /// <summary>The saving against the largest model alone, 0..1.</summary>
    public double FlopsSaving => LargestModelGflopsPerImage > 0 ? 1 - MeanGflopsPerImage / LargestModelGflopsPerImage : 0;

    /// <summary>Every image's record, in generation order.</summary>
    public required IReadOnlyList<ImageRecord> Images { get; init; }
}

/// <summary>All images of a run (B, C, H, W) in [-1, 1], the raw samples (latents for latent models) and the run record.</summary>
public sealed record GenerationResult(Tensor Images, Tensor Samples, GenerationRecord Record);

/// <summary>Reported after each sampler step: images finished before this batch, the batch's size, the step within it.</summary>
/// <param name="ImagesDone">Images of this rank finished before the current batch.</param>
/// <param name="Images">Images of this rank in all.</param>
/// <param name="BatchSize">Images in the current batch.</param>
/// <param name="Step">Steps done in the current batch, 1..<paramref name="StepCount"/>.</param>
/// <param name="StepCount">Network-evaluating steps of one batch.</param>
/// <param name="MeanGflopsPerImage">The current batch's mean cost per image so far, in GFLOPs.</param>
public sealed record GenerationProgress(int ImagesDone, int Images, int BatchSize, int Step, int StepCount, double MeanGflopsPerImage)
{
    /// <summary>Global indices of the current batch's images.</summary>
    public IReadOnlyList<int> Indices { get; init; } = [];

    /// <summary>The ladder model (index, cheapest first) that served each image of the batch in this step.</summary>
    public IReadOnlyList<int> ModelPerImage { get; init; } = [];

    /// <summary>
    /// The batch's current state as images (B, C, H, W), roughly in [-1, 1] and decoded for latent models, on the
    /// steps <see cref="GenerationOptions.PreviewEvery"/> asks for (and the last); else null. A fresh tensor.
    /// </summary>
    public Tensor? Preview { get; init; }
}
