namespace MediatorDiT.Diffusion;

/// <summary>
/// Where a sampler's standard-normal draws come from: SiT's SDE makes one per step for the whole state, DiT's
/// ancestral and DDIM (eta above 0) samplers one per step as torch.randn_like does, in the official order and
/// layout (under guidance both halves of the doubled batch). Swappable so that a run can replay recorded draws.
/// </summary>
public interface INoiseSource
{
    /// <summary>
    /// Called once before any network call with the shape of every draw and how many the run will make;
    /// throws a <see cref="MediatorDiTException"/> if the source cannot supply them.
    /// </summary>
    void Prepare(ReadOnlySpan<int> drawShape, int drawCount);

    /// <summary>Fills <paramref name="destination"/> with the next draw of independent N(0, 1) values.</summary>
    void Next(Span<float> destination);
}
