using System.Runtime.CompilerServices;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// Scalar math the device kernels share, written with the operations ILGPU compiles for every back end (adds,
/// multiplies, fused multiply-adds, bit casts, comparisons), so that a kernel gives the same bits as the CPU kernels'
/// vector code on every accelerator.
/// </summary>
internal static class DeviceMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float Lowest = -87.33654f, Highest = 88.72284f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f,
        P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    /// <summary>1.5 * 2^23: adding and subtracting it rounds a float of magnitude below 2^22 to the nearest integer, ties to even.</summary>
    private const float RoundingShift = 12582912f;

    /// <summary>
    /// exp(x) as Nn.FastExp computes it lane by lane (the same reduction, polynomial, and 2^n in two factors), so the
    /// results are the CPU kernels' bits: 0 below -87.34, +inf above 88.72, NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x)
    {
#pragma warning disable CS1718 // x != x is the NaN test, one comparison in every back end
        if (x != x) return x;
#pragma warning restore CS1718
        if (x < Lowest) return 0f;
        if (x > Highest) return float.PositiveInfinity;
        float p = Reduced(x, out int n);
        int half = n >> 1;
        return p * Pow2(half) * Pow2(n - half);
    }

    /// <summary>e^r for a = n ln2 + r (a within [Lowest, Highest]); n returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduced(float a, out int n)
    {
        float t = a * Log2E;
        float nf = (t + RoundingShift) - RoundingShift; // |t| <= 128: round to nearest, ties to even, as the CPU's round instruction
        float r = MathF.FusedMultiplyAdd(nf, -Ln2Hi, a);
        r = MathF.FusedMultiplyAdd(nf, -Ln2Lo, r);
        float p = MathF.FusedMultiplyAdd(P0, r, P1);
        p = MathF.FusedMultiplyAdd(p, r, P2);
        p = MathF.FusedMultiplyAdd(p, r, P3);
        p = MathF.FusedMultiplyAdd(p, r, P4);
        p = MathF.FusedMultiplyAdd(p, r, P5);
        n = (int)nf;
        return MathF.FusedMultiplyAdd(p, r * r, r + 1f);
    }

    /// <summary>2^n for n in [-126, 127], built in the exponent bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Pow2(int n) => BitConverter.Int32BitsToSingle((n + 127) << 23);

    /// <summary>
    /// ln(x) as log2(x) ln 2: ILGPU's PTX back end has no natural logarithm (nor exponential) of its own, only the
    /// hardware's lg2.approx.f32 (absolute error about 2^-22 near 1), reached through ILGPU's Log2 intrinsic
    /// (MathF.Log2 itself is left an undefined external call). The kernels take it of sums of at least 1 (a
    /// softmax row's sum with its maximum term e^0), where that is a few units in the last place.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log(float x) => ILGPU.IntrinsicMath.CPUOnly.Log2(x) * 0.6931471805599453f;
}
