using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>Standard normal draws from a seeded <see cref="RandomSource"/>.</summary>
public sealed class SeededDiffusionNoise : IDiffusionNoise
{
    public RandomSource Random { get; }

    public SeededDiffusionNoise(RandomSource random) => Random = random;

    public SeededDiffusionNoise(ulong seed) : this(new RandomSource(seed)) { }

    public void Fill(Span<float> destination) => Random.FillGaussian(destination);
}
