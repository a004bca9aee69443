namespace MediatorDiT.Sampling;

/// <summary>
/// Settings of <see cref="LadderDemo"/>: images per class, time points of SiT's SDE (Euler-Maruyama,
/// sigma diffusion, mean last step, as `mdit sample` defaults), the dynamic schedule's switch ratios and
/// reference steps, and the seed of the shared noise.
/// </summary>
public sealed record LadderDemoOptions
{
    /// <summary>
    /// Default time points, as `mdit sample` (and `mdit search-thresholds`, whose ratios schedule.json
    /// holds): both runs of 80 Fashion-MNIST images take about 26 s on the busy 2-core development VM.
    /// </summary>
    public const int DefaultSteps = 50;

    public static IReadOnlyList<double> DefaultRatios { get; } = [0.9, 0.6];

    public const int DefaultFirst = 3;

    public int PerClass { get; init; } = 8;
    public int Steps { get; init; } = DefaultSteps;

    /// <summary>One ratio per move up the ladder; null: <see cref="DefaultRatios"/> for 3 models, else 0.9, 0.6, 0.3, ...</summary>
    public IReadOnlyList<double>? Ratios { get; init; }

    public int First { get; init; } = DefaultFirst;
    public ulong Seed { get; init; }

    /// <summary>The switch ratios for a ladder of <paramref name="models"/> models.</summary>
    public IReadOnlyList<double> RatiosFor(int models) =>
        Ratios ?? (models == 3 ? DefaultRatios : Enumerable.Range(0, models - 1).Select(i => Math.Max(0, 0.9 - 0.3 * i)).ToArray());

    public LadderDemoOptions Validate()
    {
        if (PerClass < 1) throw new MediatorDiTException($"--per-class must be at least 1, got {PerClass}.");
        if (Steps < 2) throw new MediatorDiTException($"--steps must be at least 2 time points, got {Steps}.");
        if (Steps > TimeGrid.MaxPoints) throw new MediatorDiTException($"--steps must be at most {TimeGrid.MaxPoints} time points, got {Steps}.");
        if (First < 1) throw new MediatorDiTException($"--first must be at least 1, got {First}.");
        if (First + 1 >= Steps)
            throw new MediatorDiTException($"--first {First} leaves no step to switch in with --steps {Steps}; use fewer reference steps or more time points.");
        return this;
    }
}
