using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// Feeds recorded draws in order: <see cref="Draws"/> is (count, ...) with draw k at index k, e.g. the
/// per-step noise an official run recorded, so a run can be reproduced exactly. <c>name</c> says where the
/// draws came from (e.g. the file) in the messages.
/// </summary>
public sealed class ReplayNoiseSource : INoiseSource
{
    private readonly string _name;

    /// <summary>The recorded draws (count, ...), draw k at index k.</summary>
    public Tensor Draws { get; }

    /// <summary>How many draws have been handed out.</summary>
    public int Used { get; private set; }

    /// <summary>How many draws were recorded.</summary>
    public int Count => Draws.Dim(0);

    /// <summary>Replays <paramref name="draws"/> from the first.</summary>
    /// <param name="draws">The recorded draws (count, ...), at least one.</param>
    /// <param name="name">Where the draws came from, for messages.</param>
    /// <exception cref="MediatorDiTException"><paramref name="draws"/> has rank below 2 or no draws.</exception>
    public ReplayNoiseSource(Tensor draws, string name = "recorded noise")
    {
        ArgumentNullException.ThrowIfNull(draws);
        if (draws.Rank < 2 || draws.Dim(0) == 0)
            throw new MediatorDiTException($"{name} has shape [{draws.ShapeString}] but (N, ...) with N >= 1 draws was expected.");
        Draws = draws;
        _name = name;
    }

    private int DrawLength => Draws.Length / Draws.Dim(0);

    /// <inheritdoc/>
    /// <remarks>The recorded draws' shape must equal <paramref name="drawShape"/> and enough must be left.</remarks>
    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (!Draws.Shape.AsSpan(1).SequenceEqual(drawShape))
            throw new MediatorDiTException(
                $"{_name} holds draws of shape [{string.Join(", ", Draws.Shape[1..])}] but the sampler's state is [{string.Join(", ", drawShape.ToArray())}] (under guidance the doubled batch).");
        if (Count - Used < drawCount)
            throw new MediatorDiTException(
                $"{_name} has {Count - Used} draws left but the run needs {drawCount}, one per step that adds noise.");
    }

    /// <inheritdoc/>
    public void Next(Span<float> destination)
    {
        if (Used >= Count)
            throw new MediatorDiTException($"all {Count} draws of {_name} are used up; the replay needs draw {Used + 1}.");
        if (destination.Length != DrawLength)
            throw new MediatorDiTException($"draw {Used} of {_name} has {DrawLength} values but {destination.Length} were requested.");
        Draws.Span.Slice(Used * DrawLength, DrawLength).CopyTo(destination);
        Used++;
    }
}
