using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// GELU with the tanh approximation (nn.GELU(approximate="tanh")):
/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// </summary>
public static class Gelu
{
    internal const float Beta = 0.7978845608028654f; // sqrt(2/pi)
    internal const float Kappa = 0.044715f;

    // Vectorised as y = x * s with s = sigmoid(2z) = 1 / (1 + exp(-2z)), z = Beta (x + Kappa x^3): the same
    // function (0.5 (1 + tanh z) = sigmoid(2z)) with one exp and one division per vector.
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("y is shorter than x.", nameof(y));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref xr, (nuint)i);
                (v / (Vector512<float>.One + FastExp.Exp(MinusTwoZ(v)))).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref xr, (nuint)i);
                (v / (Vector256<float>.One + FastExp.Exp(MinusTwoZ(v)))).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 4; i += 4)
            {
                var v = Vector128.LoadUnsafe(ref xr, (nuint)i);
                (v / (Vector128<float>.One + FastExp.Exp(MinusTwoZ(v)))).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Beta * (v + Kappa * v * v * v)));
        }
    }

    /// <summary>
    /// dx = dy * gelu'(x); dx may alias dy. gelu'(x) = s + 2 x s (1 - s) Beta (1 + 3 Kappa x^2) with
    /// s = sigmoid(2z), the tanh form's 0.5 (1 + t) + 0.5 x (1 - t^2) dz/dx rewritten through t = 2s - 1.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length < x.Length || dx.Length < x.Length) throw new ArgumentException("dy and dx must be as long as x.");
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float gr = ref MemoryMarshal.GetReference(dy);
        ref float dr = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var twoBeta = Vector512.Create(2f * Beta);
            var threeKappa = Vector512.Create(3f * Kappa);
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref xr, (nuint)i);
                var sg = Vector512<float>.One / (Vector512<float>.One + FastExp.Exp(MinusTwoZ(v)));
                var slope = sg * (Vector512<float>.One - sg) * twoBeta * Vector512.FusedMultiplyAdd(threeKappa, v * v, Vector512<float>.One);
                var d = Vector512.FusedMultiplyAdd(v, slope, sg);
                (Vector512.LoadUnsafe(ref gr, (nuint)i) * d).StoreUnsafe(ref dr, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var twoBeta = Vector256.Create(2f * Beta);
            var threeKappa = Vector256.Create(3f * Kappa);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref xr, (nuint)i);
                var sg = Vector256<float>.One / (Vector256<float>.One + FastExp.Exp(MinusTwoZ(v)));
                var slope = sg * (Vector256<float>.One - sg) * twoBeta * Vector256.FusedMultiplyAdd(threeKappa, v * v, Vector256<float>.One);
                var d = Vector256.FusedMultiplyAdd(v, slope, sg);
                (Vector256.LoadUnsafe(ref gr, (nuint)i) * d).StoreUnsafe(ref dr, (nuint)i);
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            var twoBeta = Vector128.Create(2f * Beta);
            var threeKappa = Vector128.Create(3f * Kappa);
            for (; i <= x.Length - 4; i += 4)
            {
                var v = Vector128.LoadUnsafe(ref xr, (nuint)i);
                var sg = Vector128<float>.One / (Vector128<float>.One + FastExp.Exp(MinusTwoZ(v)));
                var slope = sg * (Vector128<float>.One - sg) * twoBeta * Vector128.FusedMultiplyAdd(threeKappa, v * v, Vector128<float>.One);
                var d = Vector128.FusedMultiplyAdd(v, slope, sg);
                (Vector128.LoadUnsafe(ref gr, (nuint)i) * d).StoreUnsafe(ref dr, (nuint)i);
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(Beta * (v + Kappa * v * v * v));
            float d = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * Beta * (1f + 3f * Kappa * v * v);
            dx[i] = dy[i] * d;
        }
    }

    /// <summary>-2z = -2 Beta (x + Kappa x^3) = x (-2 Beta Kappa x^2 - 2 Beta).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> MinusTwoZ(Vector512<float> v) =>
        v * Vector512.FusedMultiplyAdd(Vector512.Create(-2f * Beta * Kappa), v * v, Vector512.Create(-2f * Beta));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MinusTwoZ(Vector256<float> v) =>
        v * Vector256.FusedMultiplyAdd(Vector256.Create(-2f * Beta * Kappa), v * v, Vector256.Create(-2f * Beta));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MinusTwoZ(Vector128<float> v) =>
        v * Vector128.FusedMultiplyAdd(Vector128.Create(-2f * Beta * Kappa), v * v, Vector128.Create(-2f * Beta));
}

/// <summary>Plain scalar GELU (double math) the fast one is tested against.</summary>
public static class ReferenceGelu
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        }
    }

    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        double beta = Math.Sqrt(2 / Math.PI);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double t = Math.Tanh(beta * (v + 0.044715 * v * v * v));
            dx[i] = (float)(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * beta * (1 + 3 * 0.044715 * v * v)));
        }
    }
}
