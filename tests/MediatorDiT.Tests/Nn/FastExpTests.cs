using System.Runtime.Intrinsics;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// <see cref="FastExp"/> against double-precision Math.Exp: within 2 ulp of the correctly rounded float over
/// the whole normal range, in both vector widths, and the documented edges (0 below the range, +inf above,
/// NaN kept, exp(0) = 1 exactly).
/// </summary>
public class FastExpTests
{
    private static float[] Inputs()
    {
        var xs = new List<float>();
        // Dense over the normal range, plus points around the n ln2 reduction boundaries.
        for (double v = -87.3; v <= 88.7; v += 0.0137) xs.Add((float)v);
        for (int n = -120; n <= 127; n++)
        {
            float c = (float)((n + 0.5) * Math.Log(2));
            xs.Add(c);
            xs.Add(MathF.BitDecrement(c));
            xs.Add(MathF.BitIncrement(c));
        }
        xs.AddRange([0f, -0f, 1e-8f, -1e-8f, 1f, -1f, 88.72f, -87.33f]);
        while (xs.Count % 16 != 0) xs.Add(0.5f);
        return xs.ToArray();
    }

    private static void AssertWithinTwoUlp(float[] x, float[] e, string what)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float exact = (float)Math.Exp(x[i]);
            float ulp = MathF.BitIncrement(exact) - exact;
            Assert.True(Math.Abs(e[i] - exact) <= 2 * ulp, $"{what}: exp({x[i]:R}) = {e[i]:R}, expected {exact:R} (ulp {ulp:G3})");
        }
    }

    [Fact]
    public void Vector512_WithinTwoUlp()
    {
        if (!Vector512.IsHardwareAccelerated) return; // the 256-bit test covers this machine
        var x = Inputs();
        var e = new float[x.Length];
        for (int i = 0; i < x.Length; i += 16)
            FastExp.Exp(Vector512.Create(x.AsSpan(i, 16))).CopyTo(e.AsSpan(i, 16));
        AssertWithinTwoUlp(x, e, "512-bit");
    }

    [Fact]
    public void Vector256_WithinTwoUlp()
    {
        var x = Inputs();
        var e = new float[x.Length];
        for (int i = 0; i < x.Length; i += 8)
            FastExp.Exp(Vector256.Create(x.AsSpan(i, 8))).CopyTo(e.AsSpan(i, 8));
        AssertWithinTwoUlp(x, e, "256-bit");
    }

    [Fact]
    public void Edges()
    {
        float[] x = [float.NegativeInfinity, -1000f, -88f, 0f, 89f, 1000f, float.PositiveInfinity, float.NaN];
        var e = new float[8];
        FastExp.Exp(Vector256.Create(x)).CopyTo(e);
        Assert.Equal(0f, e[0]);
        Assert.Equal(0f, e[1]);
        Assert.Equal(0f, e[2]); // exp(-88) = 6e-39 is subnormal: flushed
        Assert.Equal(1f, e[3]);
        Assert.Equal(float.PositiveInfinity, e[4]);
        Assert.Equal(float.PositiveInfinity, e[5]);
        Assert.Equal(float.PositiveInfinity, e[6]);
        Assert.True(float.IsNaN(e[7]));
        if (Vector512.IsHardwareAccelerated)
        {
            var e512 = new float[16];
            FastExp.Exp(Vector512.Create([.. x, .. x])).CopyTo(e512);
            for (int i = 0; i < 16; i++) Assert.Equal(e[i % 8], e512[i]);
        }
    }
}
