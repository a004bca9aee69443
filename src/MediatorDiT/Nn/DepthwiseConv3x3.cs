using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// nn.Conv2d(C, C, 3, padding=1, groups=C) on a channel-last grid: x (H, W, C) -> y (H, W, C).
/// weight (C, 1, 3, 3) as PyTorch stores it, bias (C). Channel-last lets the inner loop run over C.
/// Grid rows of x (and dx) sit <c>xStride</c> floats apart so v can be read in place inside the qkv buffer.
/// </summary>
internal static class DepthwiseConv3x3
{
    /// <summary>Reorders weight (C, 1, 3, 3) to taps (9, C) so each tap is a contiguous channel vector.</summary>
    public static void TransposeWeight(ReadOnlySpan<float> weight, Span<float> taps, int c)
    {
        for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++)
            taps[t * c + ch] = weight[ch * 9 + t];
    }

    /// <summary>The transpose of <see cref="TransposeWeight"/>, accumulated: dWeight (C, 1, 3, 3) += dTaps (9, C).</summary>
    public static void AccumulateWeightGradient(ReadOnlySpan<float> dTaps, Span<float> dWeight, int c)
    {
        if (dTaps.Length < 9 * c || dWeight.Length < 9 * c) throw new ArgumentException("dTaps or dWeight is too small.");
        for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++)
            dWeight[ch * 9 + t] += dTaps[t * c + ch];
    }

    /// <summary>y = conv(x) + bias, or y += conv(x) + bias when <paramref name="accumulate"/>. taps: (9, C).</summary>
    /// <remarks>One pass over the channels per output token with every valid tap applied in registers
    /// (the reference makes nine vector calls per token). Per element the sum runs bias, then taps in order.</remarks>
    public static void Forward(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> bias, Span<float> y,
        int h, int w, int c, bool accumulate)
        => Forward(x, xStride, taps, c, bias, y, c, h, w, c, accumulate);

    /// <summary>
    /// As above on a channel slice: tap t of channel ch at taps[t * tapStride + ch], output token p at
    /// y[p * yStride ..] (one head's channels of a wider buffer).
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> bias,
        Span<float> y, int yStride, int h, int w, int c, bool accumulate)
        => Forward(x, xStride, taps, tapStride, bias, y, yStride, h, w, c, accumulate, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each; every width gives the same bits).</summary>
    internal static void Forward(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> bias,
        Span<float> y, int yStride, int h, int w, int c, bool accumulate, SimdWidth width)
    {
        if (x.Length < (long)(h * w - 1) * xStride + c || y.Length < (long)(h * w - 1) * yStride + c
            || taps.Length < 8L * tapStride + c || bias.Length < c || tapStride < c || yStride < c)
            throw new ArgumentException("depthwise conv buffers are too small for the grid.");
        var g = new Grid(h, w, c, xStride, tapStride, yStride);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float tr = ref MemoryMarshal.GetReference(taps);
        ref float br = ref MemoryMarshal.GetReference(bias);
        ref float yr = ref MemoryMarshal.GetReference(y);
        switch (width)
        {
            case SimdWidth.W512: Forward<W512, Vector512<float>>(g, ref xr, ref tr, ref br, ref yr, accumulate); break;
            case SimdWidth.W256: Forward<W256, Vector256<float>>(g, ref xr, ref tr, ref br, ref yr, accumulate); break;
            default: Forward<W128, Vector128<float>>(g, ref xr, ref tr, ref br, ref yr, accumulate); break;
        }
    }

    /// <summary>h x w tokens of c channels; x rows XStride apart, tap rows TapStride apart, y (or dy) rows YStride apart.</summary>
    private readonly record struct Grid(int H, int W, int C, int XStride, int TapStride, int YStride);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Forward<TW, TV>(in Grid g, ref float xr, ref float tr, ref float br, ref float yr, bool accumulate)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int h = g.H, w = g.W, c = g.C;
        Span<int> offsets = stackalloc int[9];
        Span<int> tapIds = stackalloc int[9];
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            int count = Neighbours(i, j, h, w, g.XStride, g.TapStride, offsets, tapIds);
            int yo = (i * w + j) * g.YStride;
            int ch = 0;
            if (TW.IsAccelerated)
            {
                for (; ch <= c - TW.Count; ch += TW.Count)
                {
                    var acc = TW.Load(ref br, (nuint)ch);
                    if (accumulate) acc = TW.Add(TW.Load(ref yr, (nuint)(yo + ch)), acc);
                    for (int t = 0; t < count; t++)
                        acc = TW.Fma(TW.Load(ref xr, (nuint)(offsets[t] + ch)), TW.Load(ref tr, (nuint)(tapIds[t] + ch)), acc);
                    TW.Store(acc, ref yr, (nuint)(yo + ch));
                }
            }
            for (; ch < c; ch++)
            {
                float acc = Unsafe.Add(ref br, ch);
                if (accumulate) acc = Unsafe.Add(ref yr, yo + ch) + acc;
                for (int t = 0; t < count; t++)
                    acc = MathF.FusedMultiplyAdd(Unsafe.Add(ref xr, offsets[t] + ch), Unsafe.Add(ref tr, tapIds[t] + ch), acc);
                Unsafe.Add(ref yr, yo + ch) = acc;
            }
        }
    }

    /// <summary>
    /// The in-grid 3x3 neighbours of pixel (i, j) in the order the taps are summed (row, then column):
    /// their offsets into x and the offsets of their taps; returns how many (4 at a corner, 9 inside).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Neighbours(int i, int j, int h, int w, int xStride, int tapStride, Span<int> offsets, Span<int> tapIds)
    {
        int count = 0;
        for (int di = -1; di <= 1; di++)
        {
            int a = i + di;
            if ((uint)a >= (uint)h) continue;
            for (int dj = -1; dj <= 1; dj++)
            {
                int b = j + dj;
                if ((uint)b >= (uint)w) continue;
                offsets[count] = (a * w + b) * xStride;
                tapIds[count++] = ((di + 1) * 3 + (dj + 1)) * tapStride;
            }
        }
        return count;
    }

    /// <summary>
    /// Accumulates dx += conv^T(dy), dTaps (9, C) += correlation of dy with x, dBias += sum of dy.
    /// </summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dTaps, Span<float> dBias, int h, int w, int c)
        => BackwardAccumulate(x, xStride, taps, c, dy, c, dx, dTaps, dBias, h, w, c);

    /// <summary>As above on a channel slice: taps and dTaps rows <paramref name="tapStride"/> apart, dy rows <paramref name="dyStride"/> apart.</summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> dy,
        int dyStride, Span<float> dx, Span<float> dTaps, Span<float> dBias, int h, int w, int c)
        => BackwardAccumulate(x, xStride, taps, tapStride, dy, dyStride, dx, dTaps, dBias, h, w, c, Simd.Widest);

    /// <summary>As above at a chosen vector width (tests run each; every width gives the same bits).</summary>
    internal static void BackwardAccumulate(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> dy,
        int dyStride, Span<float> dx, Span<float> dTaps, Span<float> dBias, int h, int w, int c, SimdWidth width)
    {
        if (x.Length < (long)(h * w - 1) * xStride + c || dx.Length < (long)(h * w - 1) * xStride + c || dy.Length < (long)(h * w - 1) * dyStride + c
            || taps.Length < 8L * tapStride + c || dTaps.Length < 8L * tapStride + c || dBias.Length < c || tapStride < c || dyStride < c)
            throw new ArgumentException("depthwise conv buffers are too small for the grid.");
        var g = new Grid(h, w, c, xStride, tapStride, dyStride);
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float tr = ref MemoryMarshal.GetReference(taps);
        ref float gr = ref MemoryMarshal.GetReference(dy);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        ref float dtr = ref MemoryMarshal.GetReference(dTaps);
        ref float dbr = ref MemoryMarshal.GetReference(dBias);
        switch (width)
        {
            case SimdWidth.W512: Backward<W512, Vector512<float>>(g, ref xr, ref tr, ref gr, ref dxr, ref dtr, ref dbr); break;
            case SimdWidth.W256: Backward<W256, Vector256<float>>(g, ref xr, ref tr, ref gr, ref dxr, ref dtr, ref dbr); break;
            default: Backward<W128, Vector128<float>>(g, ref xr, ref tr, ref gr, ref dxr, ref dtr, ref dbr); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward<TW, TV>(in Grid g, ref float xr, ref float tr, ref float gr, ref float dxr, ref float dtr, ref float dbr)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int h = g.H, w = g.W, c = g.C;
        Span<int> offsets = stackalloc int[9];
        Span<int> tapIds = stackalloc int[9];
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            int count = Neighbours(i, j, h, w, g.XStride, g.TapStride, offsets, tapIds);
            int go = (i * w + j) * g.YStride;
            int ch = 0;
            if (TW.IsAccelerated)
            {
                for (; ch <= c - TW.Count; ch += TW.Count)
                {
                    var gv = TW.Load(ref gr, (nuint)(go + ch));
                    TW.Store(TW.Add(TW.Load(ref dbr, (nuint)ch), gv), ref dbr, (nuint)ch);
                    for (int t = 0; t < count; t++)
                    {
                        nuint xo = (nuint)(offsets[t] + ch), to = (nuint)(tapIds[t] + ch);
                        TW.Store(TW.Fma(gv, TW.Load(ref tr, to), TW.Load(ref dxr, xo)), ref dxr, xo);
                        TW.Store(TW.Fma(gv, TW.Load(ref xr, xo), TW.Load(ref dtr, to)), ref dtr, to);
                    }
                }
            }
            for (; ch < c; ch++)
            {
                float gs = Unsafe.Add(ref gr, go + ch);
                Unsafe.Add(ref dbr, ch) += gs;
                for (int t = 0; t < count; t++)
                {
                    int xo = offsets[t] + ch, to = tapIds[t] + ch;
                    Unsafe.Add(ref dxr, xo) = MathF.FusedMultiplyAdd(gs, Unsafe.Add(ref tr, to), Unsafe.Add(ref dxr, xo));
                    Unsafe.Add(ref dtr, to) = MathF.FusedMultiplyAdd(gs, Unsafe.Add(ref xr, xo), Unsafe.Add(ref dtr, to));
                }
            }
        }
    }
}

/// <summary>The plain per-tap form of <see cref="DepthwiseConv3x3"/> (nine vector calls per token) it is tested against.</summary>
internal static class ReferenceDepthwiseConv3x3
{
    /// <summary>y = conv(x) + bias, or y += conv(x) + bias when <paramref name="accumulate"/>. taps: (9, C).</summary>
    public static void Forward(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> bias, Span<float> y,
        int h, int w, int c, bool accumulate)
    {
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            var yr = y.Slice((i * w + j) * c, c);
            if (accumulate) TensorPrimitives.Add(yr, bias, yr);
            else bias.CopyTo(yr);
            for (int di = -1; di <= 1; di++)
            {
                int a = i + di;
                if ((uint)a >= (uint)h) continue;
                for (int dj = -1; dj <= 1; dj++)
                {
                    int b = j + dj;
                    if ((uint)b >= (uint)w) continue;
                    int t = (di + 1) * 3 + (dj + 1);
                    TensorPrimitives.MultiplyAdd(x.Slice((a * w + b) * xStride, c), taps.Slice(t * c, c), yr, yr);
                }
            }
        }
    }

    /// <summary>
    /// Accumulates dx += conv^T(dy), dTaps (9, C) += correlation of dy with x, dBias += sum of dy.
    /// </summary>
    public static void BackwardAccumulate(ReadOnlySpan<float> x, int xStride, ReadOnlySpan<float> taps, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dTaps, Span<float> dBias, int h, int w, int c)
    {
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            var g = dy.Slice((i * w + j) * c, c);
            TensorPrimitives.Add(dBias, g, dBias);
            for (int di = -1; di <= 1; di++)
            {
                int a = i + di;
                if ((uint)a >= (uint)h) continue;
                for (int dj = -1; dj <= 1; dj++)
                {
                    int b = j + dj;
                    if ((uint)b >= (uint)w) continue;
                    int t = (di + 1) * 3 + (dj + 1);
                    var xs = x.Slice((a * w + b) * xStride, c);
                    var dxs = dx.Slice((a * w + b) * xStride, c);
                    TensorPrimitives.MultiplyAdd(g, taps.Slice(t * c, c), dxs, dxs);
                    var dt = dTaps.Slice(t * c, c);
                    TensorPrimitives.MultiplyAdd(g, xs, dt, dt);
                }
            }
        }
    }
}
