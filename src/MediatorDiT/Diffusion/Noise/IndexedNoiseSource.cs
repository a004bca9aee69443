using MediatorDiT.Tensors;

namespace MediatorDiT.Diffusion;

/// <summary>
/// Draws from one generator per sample, seeded by (seed, the sample's global index): each draw fills sample s's
/// rows (its conditional row, then under guidance its unconditional row) from generator s. A sample's noise is
/// then the same in any batch, on any rank of any world size. <see cref="InitialNoise"/> draws z from the same
/// generators first.
/// </summary>
public sealed class IndexedNoiseSource : INoiseSource
{
    private readonly RandomSource[] _generators;
    private int _rowsPerSample = 1;

    /// <summary>One generator per sample, from (<paramref name="seed"/>, index) by <see cref="ForSample"/>.</summary>
    /// <param name="seed">the run's seed</param>
    /// <param name="indices">each sample's global index, in batch order</param>
    /// <exception cref="MediatorDiTException"><paramref name="indices"/> is empty or holds a negative index.</exception>
    public IndexedNoiseSource(ulong seed, ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty) throw new MediatorDiTException("indexed noise needs at least one sample index, got none.");
        _generators = new RandomSource[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            if (indices[i] < 0) throw new MediatorDiTException($"sample indices must not be negative, got {indices[i]}.");
            _generators[i] = ForSample(seed, indices[i]);
        }
    }

    /// <summary>The generator of sample <paramref name="index"/> of a run seeded with <paramref name="seed"/>.</summary>
    public static RandomSource ForSample(ulong seed, long index) =>
        // A second splitmix round of the index keeps neighbouring (seed, index) pairs far apart.
        new(seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)index + 0x632BE59BD9B4E019UL));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>z (B, <paramref name="sampleShape"/>): sample s's values from its generator.</summary>
    public Tensor InitialNoise(ReadOnlySpan<int> sampleShape)
    {
        var z = new Tensor([_generators.Length, .. sampleShape]);
        int per = z.Length / _generators.Length;
        for (int s = 0; s < _generators.Length; s++) _generators[s].FillGaussian(z.Span.Slice(s * per, per));
        return z;
    }

    /// <inheritdoc/>
    /// <remarks>Each draw's first dimension must be a multiple of the sample count B (under guidance it is 2 B).</remarks>
    public void Prepare(ReadOnlySpan<int> drawShape, int drawCount)
    {
        if (drawShape.IsEmpty || drawShape[0] % _generators.Length != 0)
            throw new MediatorDiTException(
                $"indexed noise for {_generators.Length} samples cannot fill draws of shape [{string.Join(", ", drawShape.ToArray())}]; the first dimension must be a multiple of the samples.");
        _rowsPerSample = drawShape[0] / _generators.Length;
    }

    /// <inheritdoc/>
    public void Next(Span<float> destination)
    {
        int rows = _generators.Length * _rowsPerSample;
        if (destination.Length % rows != 0)
            throw new MediatorDiTException($"indexed noise cannot split a draw of {destination.Length} values into {rows} rows.");
        int per = destination.Length / rows;
        // Row layout as the samplers use it: copy c of sample s is row c * B + s.
        for (int s = 0; s < _generators.Length; s++)
            for (int copy = 0; copy < _rowsPerSample; copy++)
                _generators[s].FillGaussian(destination.Slice((copy * _generators.Length + s) * per, per));
    }
}
