using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>Fresh N(0, 1) draws from a <see cref="RandomSource"/>, in row-major order of the state.</summary>
public sealed class GaussianNoiseSource : INoiseSource
{
    public RandomSource Random { get; }

    public GaussianNoiseSource(RandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Random = random;
    }

    public GaussianNoiseSource(ulong seed) : this(new RandomSource(seed)) { }

    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount) { }

    public void Next(Span<float> destination) => Random.FillGaussian(destination);

    /// <summary>A new tensor of N(0, 1) draws, e.g. the initial noise z.</summary>
    public Tensor Draw(params int[] shape)
    {
        var z = new Tensor(shape);
        Random.FillGaussian(z.Span);
        return z;
    }
}
