namespace MediatorDiT.Sampling;

/// <summary>
/// Classifier-free guidance: prediction = uncond + Scale (cond - uncond). The official SiT/DiT code guides
/// only the first 3 channels (<see cref="Official"/>); <see cref="AllChannels"/> guides every channel;
/// <see cref="ForModel"/> picks between them by the model's channel count (the one default rule).
/// A scale of exactly 1 means no guidance, as in the official scripts (no doubled batch).
/// </summary>
public sealed record ClassifierFreeGuidance
{
    /// <summary>The channels the official code guides (written for 4-channel latents).</summary>
    public const int OfficialChannels = 3;

    /// <summary>The guidance scale, at least 1.</summary>
    public float Scale { get; }

    /// <summary>How many leading channels are guided; null guides all of them.</summary>
    public int? GuidedChannels { get; }

    /// <summary>Guidance at <paramref name="scale"/> on the first <paramref name="guidedChannels"/> channels.</summary>
    /// <param name="scale">The guidance scale: finite and at least 1 (1 runs no guidance).</param>
    /// <param name="guidedChannels">Leading channels to guide, at least 1; null guides all.</param>
    /// <exception cref="MediatorDiTException">The scale or channel count is out of range.</exception>
    public ClassifierFreeGuidance(float scale, int? guidedChannels = OfficialChannels)
    {
        if (!(scale >= 1) || float.IsInfinity(scale))
            throw new MediatorDiTException($"cfg scale must be a finite number >= 1 (1 means no guidance), got {scale}.");
        if (guidedChannels is < 1)
            throw new MediatorDiTException($"guided channel count must be at least 1 (or null for all channels), got {guidedChannels}.");
        Scale = scale;
        GuidedChannels = guidedChannels;
    }

    /// <summary>The official variant: the first 3 channels are guided, the rest keep their own halves.</summary>
    public static ClassifierFreeGuidance Official(float scale) => new(scale, OfficialChannels);

    /// <summary>Every channel guided.</summary>
    public static ClassifierFreeGuidance AllChannels(float scale) => new(scale, null);

    /// <summary>
    /// The default for a model with <paramref name="inChannels"/> input channels: the official first 3 for
    /// models of 4 or more channels (the latent models it was written for, so published results reproduce),
    /// all channels for models with fewer (pixel models), where "the first 3" would be all or too many.
    /// </summary>
    public static int? DefaultGuidedChannels(int inChannels) => inChannels >= 4 ? OfficialChannels : null;

    /// <summary>Guidance at <paramref name="scale"/> on the default channels of a model with <paramref name="inChannels"/> channels.</summary>
    public static ClassifierFreeGuidance ForModel(float scale, int inChannels) => new(scale, DefaultGuidedChannels(inChannels));

    /// <summary>
    /// The one rule every caller uses: no guidance at a scale of 1 (null); otherwise all channels
    /// (<paramref name="allChannels"/> true), the official first 3 (false; refused for a model of fewer channels),
    /// or the default for the model's channel count (null, <see cref="ForModel"/>).
    /// </summary>
    public static ClassifierFreeGuidance? Choose(float scale, bool? allChannels, int inChannels)
    {
        if (!(scale > 1f)) return null;
        return allChannels switch
        {
            true => AllChannels(scale),
            false when inChannels < OfficialChannels => throw new MediatorDiTException(
                $"guidance on the first {OfficialChannels} channels was asked for but the model has only {inChannels}; guide all of them."),
            false => Official(scale),
            null => ForModel(scale, inChannels),
        };
    }

    /// <summary>The guided channels as a run record stores them: a count, or "all".</summary>
    public object Recorded => GuidedChannels is int c ? c : "all";

    /// <summary>Whether a doubled batch is run (scale above 1).</summary>
    public bool IsActive => Scale > 1;

    /// <summary>
    /// The number of guided channels of a model with <paramref name="inChannels"/> channels (all of them
    /// when <see cref="GuidedChannels"/> is null); more than the model has is refused.
    /// </summary>
    public int ChannelsFor(int inChannels)
    {
        if (GuidedChannels is int c && c > inChannels)
            throw new MediatorDiTException(
                $"guidance is set for {c} channels but the model has only {inChannels}; guide at most that many, or use ClassifierFreeGuidance.AllChannels for all of them.");
        return GuidedChannels ?? inChannels;
    }
}
