namespace MediatorDiT.Diffusion;

/// <summary>
/// Where the Gaussian diffusion's standard normal draws come from. Each <see cref="Fill"/> is one
/// torch.randn_like call of the official code, in the same order, so a recorded sequence can be replayed.
/// </summary>
public interface IDiffusionNoise
{
    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) values (one draw).</summary>
    void Fill(Span<float> destination);

    /// <summary>
    /// Called before the first network call of a sampling run with the shape of every draw and how many the
    /// run makes; a source that cannot supply them throws a <see cref="MediatorDiTException"/>. Fresh draws
    /// can always be made, so by default nothing is checked.
    /// </summary>
    void Prepare(ReadOnlySpan<int> drawShape, int drawCount) { }
}
