using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// Fused row kernels for attention logits, one call per row instead of five TensorPrimitives calls
/// (those cost more in call overhead than in arithmetic on 16- to 256-wide rows). Written once over
/// <see cref="ISimd{TV}"/> at the width <see cref="Simd.ForRow"/> picks for the row length, scalar tails.
/// <see cref="ReferenceSoftmaxRows"/> is the plain twin they are tested against.
/// </summary>
internal static class SoftmaxRows
{
    /// <summary>
    /// row = softmax(row + bias) in place (bias empty: none); returns the log-sum-exp of row + bias,
    /// so the probabilities can be recomputed as exp(logit - lse).
    /// </summary>
    public static float Forward(Span<float> row, ReadOnlySpan<float> bias) => Forward(row, bias, Simd.ForRow(row.Length));

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static float Forward(Span<float> row, ReadOnlySpan<float> bias, SimdWidth width)
    {
        int n = row.Length;
        if (!bias.IsEmpty && bias.Length < n) throw new ArgumentException("bias is shorter than the row.", nameof(bias));
        ref float x = ref MemoryMarshal.GetReference(row);
        ref float b = ref MemoryMarshal.GetReference(bias);
        return width switch
        {
            SimdWidth.W512 => Forward<W512, Vector512<float>>(ref x, ref b, n, !bias.IsEmpty),
            SimdWidth.W256 => Forward<W256, Vector256<float>>(ref x, ref b, n, !bias.IsEmpty),
            _ => Forward<W128, Vector128<float>>(ref x, ref b, n, !bias.IsEmpty),
        };
    }

    /// <summary>The row x (n) with bias b (n, when <paramref name="hasBias"/>): bias add and maximum, exp and sum, scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Forward<TW, TV>(ref float x, ref float b, int n, bool hasBias) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        float max = float.NegativeInfinity;
        // Pass 1: add the bias, find the maximum.
        if (TW.IsAccelerated && n >= TW.Count)
        {
            var vm = TW.Splat(float.NegativeInfinity);
            for (; i <= n - TW.Count; i += TW.Count)
            {
                var v = TW.Load(ref x, (nuint)i);
                if (hasBias)
                {
                    v = TW.Add(v, TW.Load(ref b, (nuint)i));
                    TW.Store(v, ref x, (nuint)i);
                }
                vm = TW.Max(vm, v);
            }
            max = TW.First(TW.MaxAll(vm));
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref x, i);
            if (hasBias) { v += Unsafe.Add(ref b, i); Unsafe.Add(ref x, i) = v; }
            max = Math.Max(max, v);
        }
        // Pass 2: exponentiate and sum.
        float sum = ExpShiftedSum<TW, TV>(ref x, n, max);
        // Pass 3: normalise.
        Scale<TW, TV>(ref x, n, 1f / sum);
        return max + MathF.Log(sum);
    }

    /// <summary>row = exp(row - lse) in place: the probabilities of a softmax whose log-sum-exp is known.</summary>
    public static void ExpShifted(Span<float> row, float lse) => ExpShifted(row, lse, Simd.ForRow(row.Length));

    internal static void ExpShifted(Span<float> row, float lse, SimdWidth width)
    {
        ref float x = ref MemoryMarshal.GetReference(row);
        _ = width switch
        {
            SimdWidth.W512 => ExpShiftedSum<W512, Vector512<float>>(ref x, row.Length, lse),
            SimdWidth.W256 => ExpShiftedSum<W256, Vector256<float>>(ref x, row.Length, lse),
            _ => ExpShiftedSum<W128, Vector128<float>>(ref x, row.Length, lse),
        };
    }

    /// <summary>
    /// Softmax backward for one row from the probabilities p and dL/dp: dp = p * (dp - delta), in place, with
    /// delta = sum(p * dp) computed here when <paramref name="delta"/> is NaN (attention passes rowsum(dO * O)).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> p, Span<float> dp, float delta = float.NaN) =>
        Backward(p, dp, delta, Simd.ForRow(dp.Length));

    internal static void Backward(ReadOnlySpan<float> p, Span<float> dp, float delta, SimdWidth width)
    {
        int n = dp.Length;
        if (p.Length < n) throw new ArgumentException("p is shorter than the row.", nameof(p));
        ref float pp = ref MemoryMarshal.GetReference(p);
        ref float g = ref MemoryMarshal.GetReference(dp);
        switch (width)
        {
            case SimdWidth.W512: Backward<W512, Vector512<float>>(ref pp, ref g, n, delta); break;
            case SimdWidth.W256: Backward<W256, Vector256<float>>(ref pp, ref g, n, delta); break;
            default: Backward<W128, Vector128<float>>(ref pp, ref g, n, delta); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward<TW, TV>(ref float p, ref float g, int n, float delta) where TW : struct, ISimd<TV> where TV : struct
    {
        if (float.IsNaN(delta)) delta = Dot<TW, TV>(ref p, ref g, n);
        int i = 0;
        if (TW.IsAccelerated)
        {
            var vd = TW.Splat(delta);
            for (; i <= n - TW.Count; i += TW.Count)
                TW.Store(TW.Multiply(TW.Load(ref p, (nuint)i), TW.Subtract(TW.Load(ref g, (nuint)i), vd)), ref g, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref g, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref g, i) - delta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ExpShiftedSum<TW, TV>(ref float x, int n, float shift) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        float sum = 0;
        if (TW.IsAccelerated && n >= TW.Count)
        {
            var vs = TW.Splat(shift);
            var acc = TW.Zero;
            for (; i <= n - TW.Count; i += TW.Count)
            {
                var e = FastExp.Exp<TW, TV>(TW.Subtract(TW.Load(ref x, (nuint)i), vs));
                TW.Store(e, ref x, (nuint)i);
                acc = TW.Add(acc, e);
            }
            sum = TW.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref x, i) - shift);
            Unsafe.Add(ref x, i) = e;
            sum += e;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale<TW, TV>(ref float x, int n, float s) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        if (TW.IsAccelerated)
        {
            var vs = TW.Splat(s);
            for (; i <= n - TW.Count; i += TW.Count) TW.Store(TW.Multiply(TW.Load(ref x, (nuint)i), vs), ref x, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref x, i) *= s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot<TW, TV>(ref float a, ref float b, int n) where TW : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        float sum = 0;
        if (TW.IsAccelerated && n >= TW.Count)
        {
            var acc = TW.Zero;
            for (; i <= n - TW.Count; i += TW.Count)
                acc = TW.Fma(TW.Load(ref a, (nuint)i), TW.Load(ref b, (nuint)i), acc);
            sum = TW.Sum(acc);
        }
        for (; i < n; i++) sum += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        return sum;
    }
}

/// <summary>Plain scalar (double) twins of <see cref="SoftmaxRows"/>.</summary>
internal static class ReferenceSoftmaxRows
{
    public static float Forward(Span<float> row, ReadOnlySpan<float> bias)
    {
        int n = row.Length;
        var z = new double[n];
        double max = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            z[i] = row[i] + (bias.IsEmpty ? 0 : (double)bias[i]);
            max = Math.Max(max, z[i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.Exp(z[i] - max);
        for (int i = 0; i < n; i++) row[i] = (float)(Math.Exp(z[i] - max) / sum);
        return (float)(max + Math.Log(sum));
    }

    public static void Backward(ReadOnlySpan<float> p, Span<float> dp, float delta = float.NaN)
    {
        double d = delta;
        if (float.IsNaN(delta))
        {
            d = 0;
            for (int i = 0; i < dp.Length; i++) d += (double)p[i] * dp[i];
        }
        for (int i = 0; i < dp.Length; i++) dp[i] = (float)(p[i] * (dp[i] - d));
    }
}
