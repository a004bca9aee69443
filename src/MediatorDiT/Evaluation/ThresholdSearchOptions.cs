using MediatorDiT.Sampling;

namespace MediatorDiT.Evaluation;

/// <summary>Settings of a threshold sweep other than the ladder and sampler.</summary>
public sealed record ThresholdSearchOptions
{
    /// <summary>Samples in the fixed seed set.</summary>
    public int Samples { get; init; } = 64;

    /// <summary>
    /// Samples per batch, which is also the decision unit: the adaptive rule decides on the batch mean of
    /// the state change (the official rule; the authors sample one image at a time, batch size 1).
    /// </summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>The seed of the seed set (each sample's noise from (Seed, index), as the pipeline draws it).</summary>
    public ulong Seed { get; init; }

    /// <summary>Class labels, cycled over the samples; null: 0, 1, ..., classes - 1, 0, ...</summary>
    public IReadOnlyList<int>? Labels { get; init; }

    /// <summary>F: the steps whose mean change is the reference (the official first_several_num).</summary>
    public int ReferenceSteps { get; init; } = 3;

    /// <summary>How the schedules measure the change between states.</summary>
    public StateDistance Distance { get; init; } = StateDistance.MeanAbsolute;

    /// <summary>
    /// Evaluate each shared trajectory prefix once (<see cref="SharedEvaluationCache"/>); false runs every
    /// schedule independently (same results, for comparison).
    /// </summary>
    public bool ShareTrajectories { get; init; } = true;

    /// <summary>Returns these options, or throws a <see cref="MediatorDiTException"/> naming the first impossible value.</summary>
    public ThresholdSearchOptions Validate()
    {
        if (Samples < 1) throw new MediatorDiTException($"the threshold search needs at least one sample, got {Samples}.");
        if (BatchSize < 1) throw new MediatorDiTException($"the batch size must be at least 1, got {BatchSize}.");
        if (ReferenceSteps < 1) throw new MediatorDiTException($"the reference must span at least one step, got {ReferenceSteps}.");
        if (!Enum.IsDefined(Distance)) throw new MediatorDiTException($"state distance {(int)Distance} is not one of MeanAbsolute, MeanSquared.");
        return this;
    }
}
