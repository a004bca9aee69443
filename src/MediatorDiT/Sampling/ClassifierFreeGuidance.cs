namespace MediatorDiT.Sampling;

/// <summary>
/// Classifier-free guidance: prediction = uncond + Scale (cond - uncond). The official SiT/DiT code guides
/// only the first 3 channels (<see cref="Official"/>); <see cref="AllChannels"/> guides every channel.
/// A scale of exactly 1 means no guidance, as in the official scripts (no doubled batch).
/// </summary>
public sealed record ClassifierFreeGuidance
{
    /// <summary>The guidance scale, at least 1.</summary>
    public float Scale { get; }

    /// <summary>How many leading channels are guided; null guides all of them.</summary>
    public int? GuidedChannels { get; }

    public ClassifierFreeGuidance(float scale, int? guidedChannels = 3)
    {
        if (!(scale >= 1) || float.IsInfinity(scale))
            throw new MediatorDiTException($"cfg scale must be a finite number >= 1 (1 means no guidance), got {scale}.");
        if (guidedChannels is < 1)
            throw new MediatorDiTException($"guided channel count must be at least 1 (or null for all channels), got {guidedChannels}.");
        Scale = scale;
        GuidedChannels = guidedChannels;
    }

    /// <summary>The official variant: the first 3 channels are guided, the rest keep their own halves.</summary>
    public static ClassifierFreeGuidance Official(float scale) => new(scale, 3);

    /// <summary>Every channel guided.</summary>
    public static ClassifierFreeGuidance AllChannels(float scale) => new(scale, null);

    /// <summary>Whether a doubled batch is run (scale above 1).</summary>
    public bool IsActive => Scale > 1;
}
