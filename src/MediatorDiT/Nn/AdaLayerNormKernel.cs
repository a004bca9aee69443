using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// The row kernels of DiT's adaLN: LayerNorm without affine parameters followed by the modulation
/// y = xhat * (1 + scale) + shift, one row of d channels at a time (the layer, Models/AdaLayerNorm, picks each row's
/// image's shift and scale and runs rows in parallel). Written once over <see cref="ISimd{TV}"/>;
/// <see cref="ReferenceAdaLayerNormKernel"/> is the plain twin.
/// </summary>
internal static class AdaLayerNormKernel
{
    /// <summary>
    /// One fused pass set over x (d): mean, variance of the deviations (as LayerNorm computes it), xhat = (x - mean)
    /// rstd and y = xhat * scale + xhat + shift. Returns the mean and rstd = 1 / sqrt(variance + eps) the backward needs.
    /// </summary>
    public static (float Mean, float Rstd) ForwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale,
        Span<float> xhat, Span<float> y, float eps = LayerNorm.DefaultEps)
        => ForwardRow(x, shift, scale, xhat, y, eps, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static (float Mean, float Rstd) ForwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale,
        Span<float> xhat, Span<float> y, float eps, SimdWidth width)
    {
        int d = x.Length;
        if (shift.Length < d || scale.Length < d || xhat.Length < d || y.Length < d)
            throw new ArgumentException("shift, scale, xhat and y must be as long as x.");
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float sh = ref MemoryMarshal.GetReference(shift);
        ref float sc = ref MemoryMarshal.GetReference(scale);
        ref float hr = ref MemoryMarshal.GetReference(xhat);
        ref float yr = ref MemoryMarshal.GetReference(y);
        return width switch
        {
            SimdWidth.W512 => ForwardRow<W512, Vector512<float>>(ref xr, ref sh, ref sc, ref hr, ref yr, d, eps),
            SimdWidth.W256 => ForwardRow<W256, Vector256<float>>(ref xr, ref sh, ref sc, ref hr, ref yr, d, eps),
            _ => ForwardRow<W128, Vector128<float>>(ref xr, ref sh, ref sc, ref hr, ref yr, d, eps),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float, float) ForwardRow<TW, TV>(ref float x, ref float shift, ref float scale, ref float xhat, ref float y, int d, float eps)
        where TW : struct, ISimd<TV> where TV : struct
    {
        float mu = TensorPrimitives.Sum(MemoryMarshal.CreateReadOnlySpan(ref x, d)) / d;
        float var = 0;
        int j = 0;
        if (TW.IsAccelerated)
        {
            var vm = TW.Splat(mu);
            var acc = TW.Zero;
            for (; j <= d - TW.Count; j += TW.Count)
            {
                var dev = TW.Subtract(TW.Load(ref x, (nuint)j), vm);
                acc = TW.Add(acc, TW.Multiply(dev, dev));
            }
            var = TW.Sum(acc);
        }
        for (; j < d; j++)
        {
            float dev = Unsafe.Add(ref x, j) - mu;
            var += dev * dev;
        }
        float rs = 1f / MathF.Sqrt(var / d + eps);
        j = 0;
        if (TW.IsAccelerated)
        {
            TV vm = TW.Splat(mu), vr = TW.Splat(rs);
            for (; j <= d - TW.Count; j += TW.Count)
            {
                var h = TW.Multiply(TW.Subtract(TW.Load(ref x, (nuint)j), vm), vr);
                TW.Store(h, ref xhat, (nuint)j);
                TW.Store(TW.Add(TW.Add(TW.Multiply(h, TW.Load(ref scale, (nuint)j)), h), TW.Load(ref shift, (nuint)j)), ref y, (nuint)j);
            }
        }
        for (; j < d; j++)
        {
            float h = (Unsafe.Add(ref x, j) - mu) * rs;
            Unsafe.Add(ref xhat, j) = h;
            Unsafe.Add(ref y, j) = h * Unsafe.Add(ref scale, j) + h + Unsafe.Add(ref shift, j);
        }
        return (mu, rs);
    }

    /// <summary>
    /// The modulation's backward for one row, from g = dL/dy (d): dShift += g, dScale += g * xhat, and
    /// dxhat = g * scale + g (= g (1 + scale), what LayerNorm's backward takes). Element-wise, unfused, so every width
    /// gives the same bits.
    /// </summary>
    public static void ModulationBackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale,
        Span<float> dShift, Span<float> dScale, Span<float> dxhat)
        => ModulationBackwardRow(g, xhat, scale, dShift, dScale, dxhat, Simd.Widest);

    internal static void ModulationBackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale,
        Span<float> dShift, Span<float> dScale, Span<float> dxhat, SimdWidth width)
    {
        int d = g.Length;
        if (xhat.Length < d || scale.Length < d || dShift.Length < d || dScale.Length < d || dxhat.Length < d)
            throw new ArgumentException("xhat, scale, dShift, dScale and dxhat must be as long as g.");
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float hr = ref MemoryMarshal.GetReference(xhat);
        ref float sc = ref MemoryMarshal.GetReference(scale);
        ref float dsh = ref MemoryMarshal.GetReference(dShift);
        ref float dsc = ref MemoryMarshal.GetReference(dScale);
        ref float dh = ref MemoryMarshal.GetReference(dxhat);
        switch (width)
        {
            case SimdWidth.W512: ModulationBackwardRow<W512, Vector512<float>>(ref gr, ref hr, ref sc, ref dsh, ref dsc, ref dh, d); break;
            case SimdWidth.W256: ModulationBackwardRow<W256, Vector256<float>>(ref gr, ref hr, ref sc, ref dsh, ref dsc, ref dh, d); break;
            default: ModulationBackwardRow<W128, Vector128<float>>(ref gr, ref hr, ref sc, ref dsh, ref dsc, ref dh, d); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ModulationBackwardRow<TW, TV>(ref float g, ref float xhat, ref float scale, ref float dShift, ref float dScale,
        ref float dxhat, int d)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int j = 0;
        if (TW.IsAccelerated)
        {
            for (; j <= d - TW.Count; j += TW.Count)
            {
                var gv = TW.Load(ref g, (nuint)j);
                TW.Store(TW.Add(TW.Load(ref dShift, (nuint)j), gv), ref dShift, (nuint)j);
                TW.Store(TW.Add(TW.Multiply(gv, TW.Load(ref xhat, (nuint)j)), TW.Load(ref dScale, (nuint)j)), ref dScale, (nuint)j);
                TW.Store(TW.Add(TW.Multiply(gv, TW.Load(ref scale, (nuint)j)), gv), ref dxhat, (nuint)j);
            }
        }
        for (; j < d; j++)
        {
            float gs = Unsafe.Add(ref g, j);
            Unsafe.Add(ref dShift, j) += gs;
            Unsafe.Add(ref dScale, j) = gs * Unsafe.Add(ref xhat, j) + Unsafe.Add(ref dScale, j);
            Unsafe.Add(ref dxhat, j) = gs * Unsafe.Add(ref scale, j) + gs;
        }
    }

    /// <summary>
    /// The whole adaLN backward for one row, in two passes over d: the modulation's (as
    /// <see cref="ModulationBackwardRow(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float})"/>,
    /// same bits: dShift += g, dScale += g * xhat, dxhat = g * scale + g) with the two row sums LayerNorm's backward
    /// needs, then LayerNorm's: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), overwritten, or added
    /// to dx when <paramref name="accumulate"/>. xhat is the forward's saved LN(x); <paramref name="dxhat"/> (d) is
    /// scratch. One call per row where the layer made eight vector-library calls on 96-float rows.
    /// </summary>
    public static void BackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale, float rstd,
        Span<float> dShift, Span<float> dScale, Span<float> dxhat, Span<float> dx, bool accumulate)
        => BackwardRow(g, xhat, scale, rstd, dShift, dScale, dxhat, dx, accumulate, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each).</summary>
    internal static void BackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale, float rstd,
        Span<float> dShift, Span<float> dScale, Span<float> dxhat, Span<float> dx, bool accumulate, SimdWidth width)
    {
        int d = g.Length;
        if (xhat.Length < d || scale.Length < d || dShift.Length < d || dScale.Length < d || dxhat.Length < d || dx.Length < d)
            throw new ArgumentException("xhat, scale, dShift, dScale, dxhat and dx must be as long as g.");
        ref float gr = ref MemoryMarshal.GetReference(g);
        ref float hr = ref MemoryMarshal.GetReference(xhat);
        ref float sc = ref MemoryMarshal.GetReference(scale);
        ref float dsh = ref MemoryMarshal.GetReference(dShift);
        ref float dsc = ref MemoryMarshal.GetReference(dScale);
        ref float dh = ref MemoryMarshal.GetReference(dxhat);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        switch (width)
        {
            case SimdWidth.W512: BackwardRow<W512, Vector512<float>>(ref gr, ref hr, ref sc, rstd, ref dsh, ref dsc, ref dh, ref dxr, d, accumulate); break;
            case SimdWidth.W256: BackwardRow<W256, Vector256<float>>(ref gr, ref hr, ref sc, rstd, ref dsh, ref dsc, ref dh, ref dxr, d, accumulate); break;
            default: BackwardRow<W128, Vector128<float>>(ref gr, ref hr, ref sc, rstd, ref dsh, ref dsc, ref dh, ref dxr, d, accumulate); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRow<TW, TV>(ref float g, ref float xhat, ref float scale, float rstd, ref float dShift, ref float dScale,
        ref float dxhat, ref float dx, int d, bool accumulate)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int j = 0;
        float sum = 0f, dot = 0f;
        if (TW.IsAccelerated && d >= TW.Count)
        {
            TV s = TW.Zero, p = TW.Zero;
            for (; j <= d - TW.Count; j += TW.Count)
            {
                var gv = TW.Load(ref g, (nuint)j);
                var hv = TW.Load(ref xhat, (nuint)j);
                TW.Store(TW.Add(TW.Load(ref dShift, (nuint)j), gv), ref dShift, (nuint)j);
                TW.Store(TW.Add(TW.Multiply(gv, hv), TW.Load(ref dScale, (nuint)j)), ref dScale, (nuint)j);
                var dh = TW.Add(TW.Multiply(gv, TW.Load(ref scale, (nuint)j)), gv);
                TW.Store(dh, ref dxhat, (nuint)j);
                s = TW.Add(s, dh);
                p = TW.Fma(dh, hv, p);
            }
            sum = TW.Sum(s);
            dot = TW.Sum(p);
        }
        for (; j < d; j++)
        {
            float gs = Unsafe.Add(ref g, j), h = Unsafe.Add(ref xhat, j);
            Unsafe.Add(ref dShift, j) += gs;
            Unsafe.Add(ref dScale, j) = gs * h + Unsafe.Add(ref dScale, j);
            float dh = gs * Unsafe.Add(ref scale, j) + gs;
            Unsafe.Add(ref dxhat, j) = dh;
            sum += dh;
            dot += dh * h;
        }
        // dx = ((xhat * -meanDyX + dxhat) + -meanDy) * rstd, the operations of the unfused LayerNorm backward.
        float meanDy = sum / d, meanDyX = dot / d;
        j = 0;
        if (TW.IsAccelerated)
        {
            TV a = TW.Splat(-meanDyX), b = TW.Splat(-meanDy), r = TW.Splat(rstd);
            for (; j <= d - TW.Count; j += TW.Count)
            {
                var t = TW.Multiply(TW.Add(TW.Add(TW.Multiply(TW.Load(ref xhat, (nuint)j), a), TW.Load(ref dxhat, (nuint)j)), b), r);
                TW.Store(accumulate ? TW.Add(TW.Load(ref dx, (nuint)j), t) : t, ref dx, (nuint)j);
            }
        }
        for (; j < d; j++)
        {
            float t = (Unsafe.Add(ref xhat, j) * -meanDyX + Unsafe.Add(ref dxhat, j) + -meanDy) * rstd;
            Unsafe.Add(ref dx, j) = accumulate ? Unsafe.Add(ref dx, j) + t : t;
        }
    }
}

/// <summary>Plain scalar (double) twins of <see cref="AdaLayerNormKernel"/>.</summary>
internal static class ReferenceAdaLayerNormKernel
{
    public static (float Mean, float Rstd) ForwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale,
        Span<float> xhat, Span<float> y, float eps = LayerNorm.DefaultEps)
    {
        int d = x.Length;
        double m = 0;
        for (int j = 0; j < d; j++) m += x[j];
        m /= d;
        double v = 0;
        for (int j = 0; j < d; j++) v += (x[j] - m) * (x[j] - m);
        double rs = 1 / Math.Sqrt(v / d + eps);
        for (int j = 0; j < d; j++)
        {
            double h = (x[j] - m) * rs;
            xhat[j] = (float)h;
            y[j] = (float)(h * (1 + (double)scale[j]) + shift[j]);
        }
        return ((float)m, (float)rs);
    }

    public static void ModulationBackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale,
        Span<float> dShift, Span<float> dScale, Span<float> dxhat)
    {
        for (int j = 0; j < g.Length; j++)
        {
            dShift[j] = (float)((double)dShift[j] + g[j]);
            dScale[j] = (float)((double)dScale[j] + (double)g[j] * xhat[j]);
            dxhat[j] = (float)((double)g[j] * (1 + (double)scale[j]));
        }
    }

    public static void BackwardRow(ReadOnlySpan<float> g, ReadOnlySpan<float> xhat, ReadOnlySpan<float> scale, float rstd,
        Span<float> dShift, Span<float> dScale, Span<float> dx, bool accumulate)
    {
        int d = g.Length;
        var dxhat = new double[d];
        double sum = 0, dot = 0;
        for (int j = 0; j < d; j++)
        {
            dShift[j] = (float)((double)dShift[j] + g[j]);
            dScale[j] = (float)((double)dScale[j] + (double)g[j] * xhat[j]);
            dxhat[j] = (double)g[j] * (1 + (double)scale[j]);
            sum += dxhat[j];
            dot += dxhat[j] * xhat[j];
        }
        for (int j = 0; j < d; j++)
        {
            double t = rstd * (dxhat[j] - sum / d - xhat[j] * dot / d);
            dx[j] = (float)(accumulate ? dx[j] + t : t);
        }
    }
}
