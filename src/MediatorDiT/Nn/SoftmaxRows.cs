using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// Fused row kernels for attention logits, one call per row instead of five TensorPrimitives calls
/// (those cost more in call overhead than in arithmetic on 16- to 256-wide rows). Vector512 where the
/// CPU accelerates it, Vector256 otherwise, scalar tails. <see cref="ReferenceSoftmaxRows"/> is the
/// plain twin they are tested against.
/// </summary>
public static class SoftmaxRows
{
    /// <summary>
    /// row = softmax(row + bias) in place (bias empty: none); returns the log-sum-exp of row + bias,
    /// so the probabilities can be recomputed as exp(logit - lse).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Forward(Span<float> row, ReadOnlySpan<float> bias)
    {
        int n = row.Length;
        if (!bias.IsEmpty && bias.Length < n) throw new ArgumentException("bias is shorter than the row.", nameof(bias));
        ref float x = ref MemoryMarshal.GetReference(row);
        ref float bb = ref MemoryMarshal.GetReference(bias);
        bool hasBias = !bias.IsEmpty;
        int i = 0;
        float max = float.NegativeInfinity;
        // Pass 1: add the bias, find the maximum.
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var vm = Vector512.Create(float.NegativeInfinity);
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref x, (nuint)i);
                if (hasBias) { v += Vector512.LoadUnsafe(ref bb, (nuint)i); v.StoreUnsafe(ref x, (nuint)i); }
                vm = Vector512.Max(vm, v);
            }
            max = MaxOf(Vector256.Max(vm.GetLower(), vm.GetUpper()));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var vm = Vector256.Create(float.NegativeInfinity);
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref x, (nuint)i);
                if (hasBias) { v += Vector256.LoadUnsafe(ref bb, (nuint)i); v.StoreUnsafe(ref x, (nuint)i); }
                vm = Vector256.Max(vm, v);
            }
            max = MaxOf(vm);
        }
        for (; i < n; i++)
        {
            float v = Unsafe.Add(ref x, i);
            if (hasBias) { v += Unsafe.Add(ref bb, i); Unsafe.Add(ref x, i) = v; }
            max = Math.Max(max, v);
        }
        // Pass 2: exponentiate and sum.
        float sum = ExpShiftedSum(ref x, n, max);
        // Pass 3: normalise.
        Scale(ref x, n, 1f / sum);
        return max + MathF.Log(sum);
    }

    /// <summary>row = exp(row - lse) in place: the probabilities of a softmax whose log-sum-exp is known.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ExpShifted(Span<float> row, float lse) => ExpShiftedSum(ref MemoryMarshal.GetReference(row), row.Length, lse);

    /// <summary>
    /// Softmax backward for one row from the probabilities p and dL/dp: dp = p * (dp - delta), in place, with
    /// delta = sum(p * dp) computed here when <paramref name="delta"/> is NaN (attention passes rowsum(dO * O)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(ReadOnlySpan<float> p, Span<float> dp, float delta = float.NaN)
    {
        int n = dp.Length;
        if (p.Length < n) throw new ArgumentException("p is shorter than the row.", nameof(p));
        ref float pp = ref MemoryMarshal.GetReference(p);
        ref float g = ref MemoryMarshal.GetReference(dp);
        if (float.IsNaN(delta)) delta = Dot(ref pp, ref g, n);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vd = Vector512.Create(delta);
            for (; i <= n - 16; i += 16)
                (Vector512.LoadUnsafe(ref pp, (nuint)i) * (Vector512.LoadUnsafe(ref g, (nuint)i) - vd)).StoreUnsafe(ref g, (nuint)i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vd = Vector256.Create(delta);
            for (; i <= n - 8; i += 8)
                (Vector256.LoadUnsafe(ref pp, (nuint)i) * (Vector256.LoadUnsafe(ref g, (nuint)i) - vd)).StoreUnsafe(ref g, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref g, i) = Unsafe.Add(ref pp, i) * (Unsafe.Add(ref g, i) - delta);
    }

    private static float ExpShiftedSum(ref float x, int n, float shift)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var vs = Vector512.Create(shift);
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = FastExp.Exp(Vector512.LoadUnsafe(ref x, (nuint)i) - vs);
                e.StoreUnsafe(ref x, (nuint)i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var vs = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var e = FastExp.Exp(Vector256.LoadUnsafe(ref x, (nuint)i) - vs);
                e.StoreUnsafe(ref x, (nuint)i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref x, i) - shift);
            Unsafe.Add(ref x, i) = e;
            sum += e;
        }
        return sum;
    }

    private static void Scale(ref float x, int n, float s)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(s);
            for (; i <= n - 16; i += 16) (Vector512.LoadUnsafe(ref x, (nuint)i) * vs).StoreUnsafe(ref x, (nuint)i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            for (; i <= n - 8; i += 8) (Vector256.LoadUnsafe(ref x, (nuint)i) * vs).StoreUnsafe(ref x, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref x, i) *= s;
    }

    private static float Dot(ref float a, ref float b, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, (nuint)i), Vector512.LoadUnsafe(ref b, (nuint)i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        return sum;
    }

    private static float MaxOf(Vector256<float> v)
    {
        var m = Vector128.Max(v.GetLower(), v.GetUpper());
        return Math.Max(Math.Max(m[0], m[1]), Math.Max(m[2], m[3]));
    }
}

/// <summary>Plain scalar (double) twins of <see cref="SoftmaxRows"/>.</summary>
public static class ReferenceSoftmaxRows
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
