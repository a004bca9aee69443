using System.Runtime.Intrinsics;
using MediatorDiT.Nn;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// <see cref="FastExp"/> against double-precision Math.Exp: within 2 ulp of the correctly rounded float over
/// the whole normal range, in both vector widths, and the documented edges (0 below the range, +inf above,
/// NaN kept, exp(0) = 1 exactly); the softmax variant for x <= 0 likewise on its range.
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
    public void Vector128_WithinTwoUlpAndEqualToTheWiderTwinLaneByLane()
    {
        var x = Inputs();
        var e = new float[x.Length];
        var e256 = new float[x.Length];
        for (int i = 0; i < x.Length; i += 4)
            FastExp.Exp(Vector128.Create(x.AsSpan(i, 4))).CopyTo(e.AsSpan(i, 4));
        for (int i = 0; i < x.Length; i += 8)
            FastExp.Exp(Vector256.Create(x.AsSpan(i, 8))).CopyTo(e256.AsSpan(i, 8));
        AssertWithinTwoUlp(x, e, "128-bit");
        Assert.Equal(e256, e);
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
        var e128 = new float[8];
        FastExp.Exp(Vector128.Create(x, 0)).CopyTo(e128.AsSpan(0, 4));
        FastExp.Exp(Vector128.Create(x, 4)).CopyTo(e128.AsSpan(4, 4));
        Assert.Equal(e[..7], e128[..7]);
        Assert.True(float.IsNaN(e128[7]));
        if (Vector512.IsHardwareAccelerated)
        {
            var e512 = new float[16];
            FastExp.Exp(Vector512.Create([.. x, .. x])).CopyTo(e512);
            for (int i = 0; i < 16; i++) Assert.Equal(e[i % 8], e512[i]);
        }
    }

    [Fact]
    public void ExpNonPositive_MatchesMathFExpOnTheSoftmaxRange()
    {
        // Every input a softmax after its max shift can give: 0 down to the lowest normal result, densely near 0
        // (where most probabilities are) and then evenly; within 3e-7 relative (a few float roundings).
        var xs = new List<float>();
        for (int i = 0; i <= 4000; i++) xs.Add(-i * 1e-3f);
        for (int i = 0; i <= 8700; i++) xs.Add(-i * 0.01f);
        xs.AddRange(TestData.Gaussian(2000, 41, 20f).Select(v => -Math.Abs(v)).Where(v => v > -87.3f));
        for (int i = 0; i + 16 <= xs.Count; i += 16)
        {
            var x = xs.GetRange(i, 16).ToArray();
            var wide = FastExp.ExpNonPositive(Vector512.Create(x));
            var narrow0 = FastExp.ExpNonPositive(Vector256.Create(x, 0));
            var narrow1 = FastExp.ExpNonPositive(Vector256.Create(x, 8));
            var quarter = FastExp.ExpNonPositive(Vector128.Create(x, 4));
            for (int l = 0; l < 16; l++)
            {
                float expected = MathF.Exp(x[l]);
                float narrow = l < 8 ? narrow0[l] : narrow1[l - 8];
                Assert.True(Math.Abs(wide[l] - expected) <= 3e-7f * expected, $"exp({x[l]}) = {wide[l]}, MathF.Exp gives {expected}");
                Assert.Equal(wide[l], narrow); // the same operations lane by lane
                if (l is >= 4 and < 8) Assert.Equal(wide[l], quarter[l - 4]);
            }
        }
        // Below ln(2^-126) the result is held at the smallest normal float instead of going denormal.
        var low = FastExp.ExpNonPositive(Vector512.Create(-100f));
        Assert.True(low[0] > 0 && low[0] < 1.2e-38f, $"exp(-100) gave {low[0]}");
        Assert.Equal(1f, FastExp.ExpNonPositive(Vector512<float>.Zero)[0]);
    }
}
