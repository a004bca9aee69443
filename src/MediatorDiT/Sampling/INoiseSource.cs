namespace MediatorDiT.Sampling;

/// <summary>
/// The standard-normal draws an SDE sampler makes, one per step for the whole state (official layout,
/// so under guidance both halves). Swappable so that a run can replay recorded draws.
/// </summary>
public interface INoiseSource
{
    /// <summary>
    /// Called once before any network call with the shape of every draw and how many the run will make;
    /// throws a <see cref="MediatorDiTException"/> if the source cannot supply them.
    /// </summary>
    void Prepare(ReadOnlySpan<int> drawShape, int drawCount);

    /// <summary>Fills <paramref name="destination"/> with the next draw.</summary>
    void Next(Span<float> destination);
}
