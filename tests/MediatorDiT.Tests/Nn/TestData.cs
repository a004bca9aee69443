using MediatorDiT.Tensors;

namespace MediatorDiT.Tests;

/// <summary>Seeded random inputs and comparison helpers shared by the kernel tests.</summary>
public static class TestData
{
    public static float[] Gaussian(int n, ulong seed, float std = 1f)
    {
        var values = new float[n];
        new RandomSource(seed).FillGaussian(values, 0, std);
        return values;
    }

    public static float MaxAbs(ReadOnlySpan<float> values)
    {
        float m = 0;
        foreach (float v in values) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>Asserts max |actual - expected| &lt;= tol * max(1, max |expected|), naming the quantity.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol, string what)
    {
        float diff = MaxAbsDiff(expected, actual);
        float bound = tol * Math.Max(1f, MaxAbs(expected));
        Assert.True(diff <= bound, $"{what}: max |diff| {diff:G4} exceeds {bound:G4} (max |ref| {MaxAbs(expected):G4}).");
    }
}
