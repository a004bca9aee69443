using MediatorDiT.Sampling;

namespace MediatorDiT.Pipelines;

/// <summary>
/// Settings of <see cref="LadderDemo"/>: images per class, time points of SiT's SDE (Euler-Maruyama, sigma
/// diffusion, mean last step, as `mdit sample` defaults), the dynamic schedule's switch ratios and reference
/// steps (null: the ladder's schedule.json, else the defaults of <see cref="AdaptiveModelSchedule"/>), and the
/// seed of the shared noise.
/// </summary>
public sealed record LadderDemoOptions
{
    /// <summary>Images generated per class.</summary>
    public int PerClass { get; init; } = 8;
    /// <summary>Time points of the SDE grid, 2..10000.</summary>
    public int Steps { get; init; } = GenerationOptions.DefaultTransportSteps;

    /// <summary>One ratio per move up the ladder; null: the pipeline's stored schedule, else the default rule.</summary>
    public IReadOnlyList<double>? Ratios { get; init; }

    /// <summary>Reference steps; null: the pipeline's stored schedule, else 3.</summary>
    public int? First { get; init; }

    /// <summary>Seed of the noise both runs share.</summary>
    public ulong Seed { get; init; }

    /// <summary>Returns these options, or throws a <see cref="MediatorDiTException"/> naming the first bad one.</summary>
    public LadderDemoOptions Validate()
    {
        if (PerClass < 1) throw new MediatorDiTException($"--per-class must be at least 1, got {PerClass}.");
        if (Steps < 2) throw new MediatorDiTException($"--steps must be at least 2 time points, got {Steps}.");
        if (Steps > TimeGrid.MaxPoints) throw new MediatorDiTException($"--steps must be at most {TimeGrid.MaxPoints} time points, got {Steps}.");
        if (First is < 1) throw new MediatorDiTException($"--first must be at least 1, got {First}.");
        return this;
    }
}
