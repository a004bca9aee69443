using MediatorDiT.Diffusion;
using MediatorDiT.Sampling;
using MediatorDiT.Tensors;

namespace MediatorDiT.Pipelines;

/// <summary>Which sampler a <see cref="DiffusionPipeline"/> runs.</summary>
public enum SamplerKind
{
    /// <summary>SiT's SDE for SiT models, DiT's ancestral sampling for DiT models.</summary>
    Auto,
    /// <summary>SiT's SDE (Euler-Maruyama or Heun), the authors' setting for the dynamic schedule.</summary>
    Sde,
    /// <summary>SiT's probability-flow ODE (Euler, Heun or Dormand-Prince).</summary>
    Ode,
    /// <summary>DiT's ancestral sampling (p_sample_loop) over respaced steps.</summary>
    Ancestral,
    /// <summary>DiT's DDIM over respaced steps, with <see cref="GenerationOptions.Eta"/>.</summary>
    Ddim,
}

/// <summary>
/// How the models of a ladder take turns. <see cref="Dynamic"/> is the step-wise dynamic mediator rule,
/// <see cref="Fixed"/> switches at fixed fractions of the steps, <see cref="Single"/> uses one model throughout.
/// </summary>
public abstract record ScheduleChoice
{
    private ScheduleChoice() { }

    /// <summary>
    /// The adaptive rule (<see cref="AdaptiveModelSchedule"/>). Null ratios or reference steps: the ladder's
    /// schedule.json when it has one, else <see cref="AdaptiveModelSchedule.DefaultRatios"/> and 3 steps.
    /// </summary>
    public sealed record Dynamic(IReadOnlyList<double>? Ratios = null, int? First = null,
        StateDistance Distance = StateDistance.MeanAbsolute, DecisionScope Scope = DecisionScope.BatchMean) : ScheduleChoice;

    /// <summary>Model i + 1 takes over at fraction <c>SwitchFractions[i]</c> of the steps (<see cref="FixedModelSchedule"/>).</summary>
    public sealed record Fixed(IReadOnlyList<double> SwitchFractions) : ScheduleChoice;

    /// <summary>Ladder model <paramref name="Index"/> alone (-1: the largest).</summary>
    public sealed record Single(int Index = -1) : ScheduleChoice;

    /// <summary>The dynamic rule with the ladder's stored or default settings.</summary>
    public static ScheduleChoice Default { get; } = new Dynamic();
}

/// <summary>
/// What to generate and how. The defaults are the command line's: 16 images cycling through the classes, SiT's
/// SDE (Euler-Maruyama, sigma diffusion, mean last step of 0.04) over 50 time points or DiT's ancestral
/// sampling over 250 steps, no guidance, the dynamic schedule for a ladder, batches of 16, seed 0.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>SiT time points when <see cref="Steps"/> is not given.</summary>
    public const int DefaultTransportSteps = 50;

    /// <summary>DiT diffusion steps when <see cref="Steps"/> is not given (DiT's sample.py).</summary>
    public const int DefaultDiffusionSteps = 250;

    /// <summary>Class labels cycled over the images; empty: 0, 1, 2, ... modulo the class count.</summary>
    public IReadOnlyList<int> Labels { get; init; } = [];

    /// <summary>Images in all, over all ranks; null: one per label, or 16 without labels.</summary>
    public int? NumImages { get; init; }

    /// <summary>The sampler; Auto picks SiT's SDE or DiT's ancestral sampling by the model family.</summary>
    public SamplerKind Sampler { get; init; } = SamplerKind.Auto;

    /// <summary>SiT: time points of the grid (2..10000); DiT: respaced diffusion steps (1..1000). Null: 50 or 250.</summary>
    public int? Steps { get; init; }

    /// <summary>The SDE integrator.</summary>
    public SdeMethod SdeMethod { get; init; } = SdeMethod.Euler;
    /// <summary>The ODE integrator.</summary>
    public OdeMethod OdeMethod { get; init; } = OdeMethod.Dopri5;
    /// <summary>The SDE's diffusion coefficient w_t.</summary>
    public DiffusionForm DiffusionForm { get; init; } = DiffusionForm.Sigma;
    /// <summary>The SDE's final step to the data.</summary>
    public LastStep LastStep { get; init; } = LastStep.Mean;
    /// <summary>Size of the SDE's last step; the grid ends at 1 - LastStepSize.</summary>
    public double LastStepSize { get; init; } = 0.04;

    /// <summary>DDIM's eta (0: deterministic after z).</summary>
    public float Eta { get; init; }

    /// <summary>Classifier-free guidance scale; 1 means none.</summary>
    public float GuidanceScale { get; init; } = 1f;

    /// <summary>
    /// Guide every channel (true) or the official first 3 (false); null: the default for the model's channel
    /// count (<see cref="ClassifierFreeGuidance.ForModel"/>).
    /// </summary>
    public bool? GuideAllChannels { get; init; }

    /// <summary>With each image's global index, seeds its noise.</summary>
    public ulong Seed { get; init; }

    /// <summary>The ladder's schedule; ignored for a single model.</summary>
    public ScheduleChoice Schedule { get; init; } = ScheduleChoice.Default;

    /// <summary>Images per sampler call. Each image's noise does not depend on it; a dynamic schedule deciding on the batch mean does.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>This process's share: images i with i mod <see cref="WorldSize"/> = <see cref="Rank"/>.</summary>
    public int Rank { get; init; }
    /// <summary>Processes sharing the run (see <see cref="Rank"/>).</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>Starting noise z (images of this rank, C, H, W) instead of drawn noise; the run is one batch.</summary>
    public Tensor? InitialNoise { get; init; }

    /// <summary>Recorded per-step draws (steps, rows, C, H, W) to replay; <see cref="NoiseDrawsName"/> names them in messages.</summary>
    public Tensor? NoiseDraws { get; init; }
    /// <summary>How messages name <see cref="NoiseDraws"/>, e.g. its file.</summary>
    public string NoiseDrawsName { get; init; } = "recorded noise";

    /// <summary>Decode latent samples with the pipeline's VAE (when it has one).</summary>
    public bool Decode { get; init; } = true;

    /// <summary>
    /// Every this many steps (and at the last) progress reports carry <see cref="GenerationProgress.Preview"/>, the
    /// batch's current state as images (decoded for latent models: a VAE call each time); 0: never.
    /// </summary>
    public int PreviewEvery { get; init; }

    /// <summary>Throws a <see cref="MediatorDiTException"/> naming the first bad setting.</summary>
    public GenerationOptions Validate()
    {
        if (NumImages is < 1) throw new MediatorDiTException($"the number of images must be at least 1, got {NumImages}.");
        if (BatchSize < 1) throw new MediatorDiTException($"the batch size must be at least 1, got {BatchSize}.");
        if (WorldSize < 1) throw new MediatorDiTException($"the world size must be at least 1, got {WorldSize}.");
        if (Rank < 0 || Rank >= WorldSize) throw new MediatorDiTException($"the rank {Rank} must be in [0, world size {WorldSize}).");
        if (!(GuidanceScale >= 1) || float.IsInfinity(GuidanceScale))
            throw new MediatorDiTException($"the guidance scale must be a finite number >= 1 (1 means none), got {GuidanceScale}.");
        if (!Enum.IsDefined(Sampler)) throw new MediatorDiTException($"sampler kind {(int)Sampler} is not one of Auto, Sde, Ode, Ancestral, Ddim.");
        if (PreviewEvery < 0) throw new MediatorDiTException($"the preview interval must be 0 (none) or a positive step count, got {PreviewEvery}.");
        if (Schedule is null) throw new MediatorDiTException("the schedule must be given (ScheduleChoice.Default for the dynamic rule).");
        return this;
    }

    /// <summary>The number of images of the whole run over all ranks.</summary>
    public int TotalImages => NumImages ?? (Labels.Count > 0 ? Labels.Count : 16);

    /// <summary>The label of global image <paramref name="index"/>.</summary>
    public int LabelOf(int index, int numClasses) => Labels.Count > 0 ? Labels[index % Labels.Count] : index % numClasses;
}
