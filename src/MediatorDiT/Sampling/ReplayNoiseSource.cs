using MediatorDiT.Tensors;

namespace MediatorDiT.Sampling;

/// <summary>
/// Feeds recorded draws in order: <see cref="Draws"/> is (count, ...) with draw k at index k, e.g. the
/// per-step noise an official run recorded, so a run can be reproduced exactly.
/// </summary>
public sealed class ReplayNoiseSource : INoiseSource
{
    public Tensor Draws { get; }

    /// <summary>How many draws have been handed out.</summary>
    public int Used { get; private set; }

    public ReplayNoiseSource(Tensor draws)
    {
        ArgumentNullException.ThrowIfNull(draws);
        if (draws.Rank < 2)
            throw new MediatorDiTException($"recorded noise must be (draws, ...) with at least two dimensions, got [{draws.ShapeString}].");
        Draws = draws;
    }

    private int DrawLength => Draws.Length / Draws.Dim(0);

    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (!Draws.Shape.AsSpan(1).SequenceEqual(drawShape))
            throw new MediatorDiTException(
                $"recorded noise has draws of shape [{string.Join(", ", Draws.Shape[1..])}] but the sampler's state is [{string.Join(", ", drawShape.ToArray())}].");
        if (Draws.Dim(0) - Used < drawCount)
            throw new MediatorDiTException(
                $"recorded noise has {Draws.Dim(0) - Used} draws left but the run needs {drawCount}; record one draw per step.");
    }

    public void Next(Span<float> destination)
    {
        if (Used >= Draws.Dim(0))
            throw new MediatorDiTException($"recorded noise is exhausted after {Used} draws.");
        if (destination.Length != DrawLength)
            throw new MediatorDiTException($"recorded draws hold {DrawLength} values but {destination.Length} were requested.");
        Draws.Span.Slice(Used * DrawLength, DrawLength).CopyTo(destination);
        Used++;
    }
}
