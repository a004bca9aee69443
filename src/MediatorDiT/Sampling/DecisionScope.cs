namespace MediatorDiT.Sampling;

/// <summary>Whether the adaptive schedule decides once for the whole batch or for each sample.</summary>
public enum DecisionScope
{
    /// <summary>
    /// One decision from the distance averaged over the whole state (the official code, which is why it
    /// samples one image at a time); exact parity with it.
    /// </summary>
    BatchMean,

    /// <summary>
    /// Each sample decides from its own rows, so one batch may be served by several models in one step.
    /// With one sample this equals <see cref="BatchMean"/>.
    /// </summary>
    PerSample,
}
