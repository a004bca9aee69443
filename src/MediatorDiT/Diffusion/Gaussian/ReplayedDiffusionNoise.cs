using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// Replays recorded draws in order: <c>draws</c> is (N, ...) and the i-th <see cref="Fill"/> copies
/// draws[i], which must have exactly the requested number of values. <c>name</c> says where the draws came
/// from (e.g. the file) in the messages.
/// </summary>
public sealed class ReplayedDiffusionNoise : IDiffusionNoise
{
    private readonly Tensor _draws;
    private readonly int _perDraw;
    private readonly string _name;

    /// <summary>How many draws have been used.</summary>
    public int Used { get; private set; }

    public int Count => _draws.Dim(0);

    public ReplayedDiffusionNoise(Tensor draws, string name = "recorded noise")
    {
        ArgumentNullException.ThrowIfNull(draws);
        if (draws.Rank < 2 || draws.Dim(0) == 0)
            throw new MediatorDiTException($"{name} has shape [{draws.ShapeString}] but (N, ...) with N >= 1 draws was expected.");
        _draws = draws;
        _perDraw = draws.Length / draws.Dim(0);
        _name = name;
    }

    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (!_draws.Shape.AsSpan(1).SequenceEqual(drawShape))
            throw new MediatorDiTException(
                $"{_name} holds draws of shape [{string.Join(", ", _draws.Shape[1..])}] but the sampler's state is [{string.Join(", ", drawShape.ToArray())}] (under guidance the doubled batch).");
        if (Count - Used < drawCount)
            throw new MediatorDiTException(
                $"{_name} has {Count - Used} draws left but the run needs {drawCount}, one per step (the last step's too).");
    }

    public void Fill(Span<float> destination)
    {
        if (Used >= Count)
            throw new MediatorDiTException($"all {Count} draws of {_name} are used up; the replay needs draw {Used + 1}.");
        if (destination.Length != _perDraw)
            throw new MediatorDiTException($"draw {Used} of {_name} has {_perDraw} values but {destination.Length} were requested.");
        _draws.Span.Slice(Used * _perDraw, _perDraw).CopyTo(destination);
        Used++;
    }
}
