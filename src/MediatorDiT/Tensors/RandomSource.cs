namespace MediatorDiT.Tensors;

/// <summary>
/// xoshiro256** generator with a serialisable state, so training can resume bit for bit
/// (System.Random's state cannot be saved). Seeded through splitmix64.
/// </summary>
public sealed class RandomSource
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareGaussian;

    /// <summary>A generator whose four state words are drawn from <paramref name="seed"/> by splitmix64.</summary>
    /// <param name="seed">Any value; equal seeds give equal sequences on every machine.</param>
    public RandomSource(ulong seed)
    {
        ulong z = seed;
        _s0 = SplitMix(ref z);
        _s1 = SplitMix(ref z);
        _s2 = SplitMix(ref z);
        _s3 = SplitMix(ref z);
    }

    private static ulong SplitMix(ref ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        ulong r = z;
        r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9UL;
        r = (r ^ (r >> 27)) * 0x94D049BB133111EBUL;
        return r ^ (r >> 31);
    }

    /// <summary>The next 64 random bits (one xoshiro256** step).</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [<paramref name="low"/>, <paramref name="high"/>).</summary>
    /// <param name="low">The inclusive lower bound.</param>
    /// <param name="high">The exclusive upper bound.</param>
    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>
    /// An integer in [0, <paramref name="maxExclusive"/>) from the top 31 bits, by modulo (a bias of at most
    /// maxExclusive / 2^31, negligible for the sizes used here).
    /// </summary>
    /// <param name="maxExclusive">The exclusive upper bound; must be positive.</param>
    public int NextInt(int maxExclusive) => (int)((NextUInt64() >> 33) % (ulong)maxExclusive);

    /// <summary>Standard normal by the Box-Muller transform (pairs, the second one kept).</summary>
    public double NextGaussian()
    {
        if (_spareGaussian is double g)
        {
            _spareGaussian = null;
            return g;
        }
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        double u2 = NextDouble();
        double r = Math.Sqrt(-2 * Math.Log(u1));
        _spareGaussian = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fills <paramref name="values"/> with Normal(<paramref name="mean"/>, <paramref name="std"/>) draws, in order.</summary>
    /// <param name="values">The destination.</param>
    /// <param name="mean">The mean.</param>
    /// <param name="std">The standard deviation.</param>
    public void FillGaussian(Span<float> values, float mean = 0, float std = 1)
    {
        for (int i = 0; i < values.Length; i++) values[i] = (float)(mean + std * NextGaussian());
    }

    /// <summary>Fills <paramref name="values"/> with uniform draws in [<paramref name="low"/>, <paramref name="high"/>), in order.</summary>
    /// <param name="values">The destination.</param>
    /// <param name="low">The inclusive lower bound.</param>
    /// <param name="high">The exclusive upper bound.</param>
    public void FillUniform(Span<float> values, float low, float high)
    {
        for (int i = 0; i < values.Length; i++) values[i] = (float)Uniform(low, high);
    }

    /// <summary>Normal(0, std) redrawn until inside [low, high] (timm's trunc_normal_ bounds are absolute).</summary>
    public void FillTruncatedGaussian(Span<float> values, float std, float low = -2, float high = 2)
    {
        for (int i = 0; i < values.Length; i++)
        {
            double v;
            do v = std * NextGaussian(); while (v < low || v > high);
            values[i] = (float)v;
        }
    }

    /// <summary>The full generator state (4 words + the cached Gaussian), for checkpoints.</summary>
    public ulong[] GetState() =>
        [_s0, _s1, _s2, _s3, _spareGaussian.HasValue ? 1UL : 0UL, BitConverter.DoubleToUInt64Bits(_spareGaussian ?? 0)];

    /// <summary>Restores a state from <see cref="GetState"/>, so the sequence continues exactly where it was saved.</summary>
    /// <param name="state">The six words <see cref="GetState"/> returned.</param>
    /// <exception cref="ArgumentException"><paramref name="state"/> is not 6 words long.</exception>
    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 6) throw new ArgumentException("random state must have 6 words.");
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spareGaussian = state[4] != 0 ? BitConverter.UInt64BitsToDouble(state[5]) : null;
    }
}
