using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// GELU with the tanh approximation (nn.GELU(approximate="tanh")):
/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// </summary>
internal static class Gelu
{
    internal const float Beta = 0.7978845608028654f; // sqrt(2/pi)
    internal const float Kappa = 0.044715f;

    // Vectorised as y = x * s with s = sigmoid(2z) = 1 / (1 + exp(-2z)), z = Beta (x + Kappa x^3): the same
    // function (0.5 (1 + tanh z) = sigmoid(2z)) with one exp and one division per vector.
    public static void Forward(ReadOnlySpan<float> x, Span<float> y) => Forward(x, y, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static void Forward(ReadOnlySpan<float> x, Span<float> y, SimdWidth width)
    {
        if (y.Length < x.Length) throw new ArgumentException("y is shorter than x.", nameof(y));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int i = width switch
        {
            SimdWidth.W512 => Forward<W512, Vector512<float>>(ref xr, ref yr, x.Length),
            SimdWidth.W256 => Forward<W256, Vector256<float>>(ref xr, ref yr, x.Length),
            _ => Forward<W128, Vector128<float>>(ref xr, ref yr, x.Length),
        };
        if (i < x.Length && W128.IsAccelerated)
        {
            // The tail through the 128-bit lanes on zero-padded copies: the lanes' arithmetic is the same at every
            // width, so every width gives the same bits (a scalar tail would differ where the widths' tails do).
            Span<float> xt = stackalloc float[4], yt = stackalloc float[4];
            for (; i < x.Length; i += 4)
            {
                int m = Math.Min(4, x.Length - i);
                xt.Clear();
                x.Slice(i, m).CopyTo(xt);
                Forward<W128, Vector128<float>>(ref MemoryMarshal.GetReference(xt), ref MemoryMarshal.GetReference(yt), 4);
                yt[..m].CopyTo(y[i..]);
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Beta * (v + Kappa * v * v * v)));
        }
    }

    /// <summary>The whole vectors of x (n floats) into y; returns where the scalar tail starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Forward<TW, TV>(ref float x, ref float y, int n) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        if (!TW.IsAccelerated) return 0;
        for (; i <= n - TW.Count; i += TW.Count)
        {
            var v = TW.Load(ref x, (nuint)i);
            TW.Store(TW.Divide(v, TW.Add(TW.One, FastExp.Exp<TW, TV>(MinusTwoZ<TW, TV>(v)))), ref y, (nuint)i);
        }
        return i;
    }

    /// <summary>
    /// dx = dy * gelu'(x); dx may alias dy. gelu'(x) = s + 2 x s (1 - s) Beta (1 + 3 Kappa x^2) with
    /// s = sigmoid(2z), the tanh form's 0.5 (1 + t) + 0.5 x (1 - t^2) dz/dx rewritten through t = 2s - 1.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Backward(x, dy, dx, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, SimdWidth width)
    {
        if (dy.Length < x.Length || dx.Length < x.Length) throw new ArgumentException("dy and dx must be as long as x.");
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float gr = ref MemoryMarshal.GetReference(dy);
        ref float dr = ref MemoryMarshal.GetReference(dx);
        int i = width switch
        {
            SimdWidth.W512 => Backward<W512, Vector512<float>>(ref xr, ref gr, ref dr, x.Length),
            SimdWidth.W256 => Backward<W256, Vector256<float>>(ref xr, ref gr, ref dr, x.Length),
            _ => Backward<W128, Vector128<float>>(ref xr, ref gr, ref dr, x.Length),
        };
        if (i < x.Length && W128.IsAccelerated)
        {
            // The tail through the 128-bit lanes, as in Forward.
            Span<float> xt = stackalloc float[4], gt = stackalloc float[4], dt = stackalloc float[4];
            for (; i < x.Length; i += 4)
            {
                int m = Math.Min(4, x.Length - i);
                xt.Clear();
                gt.Clear();
                x.Slice(i, m).CopyTo(xt);
                dy.Slice(i, m).CopyTo(gt);
                Backward<W128, Vector128<float>>(ref MemoryMarshal.GetReference(xt), ref MemoryMarshal.GetReference(gt), ref MemoryMarshal.GetReference(dt), 4);
                dt[..m].CopyTo(dx[i..]);
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Backward<TW, TV>(ref float x, ref float dy, ref float dx, int n) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        if (!TW.IsAccelerated) return 0;
        var twoBeta = TW.Splat(2f * Beta);
        var threeKappa = TW.Splat(3f * Kappa);
        for (; i <= n - TW.Count; i += TW.Count)
        {
            var v = TW.Load(ref x, (nuint)i);
            var sg = TW.Divide(TW.One, TW.Add(TW.One, FastExp.Exp<TW, TV>(MinusTwoZ<TW, TV>(v))));
            var slope = TW.Multiply(TW.Multiply(TW.Multiply(sg, TW.Subtract(TW.One, sg)), twoBeta), TW.Fma(threeKappa, TW.Multiply(v, v), TW.One));
            var d = TW.Fma(v, slope, sg);
            TW.Store(TW.Multiply(TW.Load(ref dy, (nuint)i), d), ref dx, (nuint)i);
        }
        return i;
    }

    /// <summary>-2z = -2 Beta (x + Kappa x^3) = x (-2 Beta Kappa x^2 - 2 Beta).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV MinusTwoZ<TW, TV>(TV v) where TW : struct, ISimd<TV> where TV : struct =>
        TW.Multiply(v, TW.Fma(TW.Splat(-2f * Beta * Kappa), TW.Multiply(v, v), TW.Splat(-2f * Beta)));
}

/// <summary>Plain scalar GELU (double math) the fast one is tested against.</summary>
internal static class ReferenceGelu
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
