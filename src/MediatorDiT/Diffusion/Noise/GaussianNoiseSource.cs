using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>Fresh N(0, 1) draws from a <see cref="RandomSource"/>, in row-major order of the state.</summary>
public sealed class GaussianNoiseSource : INoiseSource
{
    /// <summary>The generator the draws come from; its state advances with every draw.</summary>
    public RandomSource Random { get; }

    /// <summary>Draws from <paramref name="random"/>, which the caller may share or checkpoint.</summary>
    /// <param name="random">The generator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="random"/> is null.</exception>
    public GaussianNoiseSource(RandomSource random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Random = random;
    }

    /// <summary>Draws from a new <see cref="RandomSource"/> seeded with <paramref name="seed"/>.</summary>
    /// <param name="seed">The generator's seed.</param>
    public GaussianNoiseSource(ulong seed) : this(new RandomSource(seed)) { }

    /// <inheritdoc/>
    /// <remarks>Any shape and count: the generator never runs out.</remarks>
    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount) { }

    /// <inheritdoc/>
    public void Next(Span<float> destination) => Random.FillGaussian(destination);

    /// <summary>A new tensor of N(0, 1) draws, e.g. the initial noise z.</summary>
    public Tensor Draw(params int[] shape)
    {
        var z = new Tensor(shape);
        Random.FillGaussian(z.Span);
        return z;
    }
}
