using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// Replays recorded draws in order: <c>draws</c> is (N, ...) and the i-th <see cref="Fill"/> copies
/// draws[i], which must have exactly the requested number of values.
/// </summary>
public sealed class ReplayedDiffusionNoise : IDiffusionNoise
{
    private readonly Tensor _draws;
    private readonly int _perDraw;

    /// <summary>How many draws have been used.</summary>
    public int Used { get; private set; }

    public int Count => _draws.Dim(0);

    public ReplayedDiffusionNoise(Tensor draws)
    {
        if (draws.Rank < 2 || draws.Dim(0) == 0)
            throw new MediatorDiTException($"recorded noise has shape [{draws.ShapeString}] but (N, ...) with N >= 1 draws was expected.");
        _draws = draws;
        _perDraw = draws.Length / draws.Dim(0);
    }

    public void Fill(Span<float> destination)
    {
        if (Used >= Count)
            throw new MediatorDiTException($"all {Count} recorded noise draws are used up; the replay needs draw {Used + 1}.");
        if (destination.Length != _perDraw)
            throw new MediatorDiTException($"recorded noise draw {Used} has {_perDraw} values but {destination.Length} were requested.");
        _draws.Span.Slice(Used * _perDraw, _perDraw).CopyTo(destination);
        Used++;
    }
}
