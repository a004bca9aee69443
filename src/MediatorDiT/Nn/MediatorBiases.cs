using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MediatorDiT.Nn;

/// <summary>
/// The element loops that build mediator attention's position biases from their parameters and take their
/// gradients back: per-axis biases broadcast over a token grid (the official ah/aw and ha/wa biases) and the
/// batched transposes between (n, N) and (N, n) layouts. Written once over <see cref="ISimd{TV}"/> along the
/// contiguous axis; each element is summed in the order of the plain loops in <see cref="ReferenceMediatorBiases"/>,
/// so every width gives their bits.
/// </summary>
internal static class MediatorBiases
{
    /// <summary>
    /// maps (count, h, w) += rowBias (count, h) + colBias (count, w): map c, grid row i, column j gets
    /// rowBias[c, i] + colBias[c, j] (bias1's ah_bias and aw_bias, count = heads x mediators).
    /// </summary>
    public static void AddAxisBiases(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias, int count, int h, int w)
        => AddAxisBiases(maps, rowBias, colBias, count, h, w, Simd.Widest);

    internal static void AddAxisBiases(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias, int count, int h, int w,
        SimdWidth width)
    {
        if (maps.Length < (long)count * h * w || rowBias.Length < (long)count * h || colBias.Length < (long)count * w)
            throw new ArgumentException("bias maps or axis biases are too small.");
        ref float mr = ref MemoryMarshal.GetReference(maps);
        ref float rr = ref MemoryMarshal.GetReference(rowBias);
        ref float cr = ref MemoryMarshal.GetReference(colBias);
        switch (width)
        {
            case SimdWidth.W512: AddAxisBiases<W512, Vector512<float>>(ref mr, ref rr, ref cr, count, h, w); break;
            case SimdWidth.W256: AddAxisBiases<W256, Vector256<float>>(ref mr, ref rr, ref cr, count, h, w); break;
            default: AddAxisBiases<W128, Vector128<float>>(ref mr, ref rr, ref cr, count, h, w); break;
        }
    }

    private static void AddAxisBiases<TW, TV>(ref float maps, ref float rowBias, ref float colBias, int count, int h, int w)
        where TW : struct, ISimd<TV> where TV : struct
    {
        for (int c = 0; c < count; c++)
        {
            ref float col = ref Unsafe.Add(ref colBias, c * w);
            for (int i = 0; i < h; i++)
            {
                ref float row = ref Unsafe.Add(ref maps, (c * h + i) * w);
                float a = Unsafe.Add(ref rowBias, c * h + i);
                int j = 0;
                if (TW.IsAccelerated)
                {
                    var av = TW.Splat(a);
                    for (; j <= w - TW.Count; j += TW.Count)
                        TW.Store(TW.Add(TW.Load(ref row, (nuint)j), TW.Add(av, TW.Load(ref col, (nuint)j))), ref row, (nuint)j);
                }
                for (; j < w; j++) Unsafe.Add(ref row, j) += a + Unsafe.Add(ref col, j);
            }
        }
    }

    /// <summary>
    /// maps (heads, h, w, n) += rowBias (heads, h, n), then += colBias (heads, w, n): token (i, j)'s n mediator
    /// logits get row i's and column j's biases (bias2's ha_bias and wa_bias).
    /// </summary>
    public static void AddAxisBiasesPerMediator(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias,
        int heads, int h, int w, int n)
        => AddAxisBiasesPerMediator(maps, rowBias, colBias, heads, h, w, n, Simd.Widest);

    internal static void AddAxisBiasesPerMediator(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias,
        int heads, int h, int w, int n, SimdWidth width)
    {
        if (maps.Length < (long)heads * h * w * n || rowBias.Length < (long)heads * h * n || colBias.Length < (long)heads * w * n)
            throw new ArgumentException("bias maps or axis biases are too small.");
        ref float mr = ref MemoryMarshal.GetReference(maps);
        ref float rr = ref MemoryMarshal.GetReference(rowBias);
        ref float cr = ref MemoryMarshal.GetReference(colBias);
        switch (width)
        {
            case SimdWidth.W512: AddAxisBiasesPerMediator<W512, Vector512<float>>(ref mr, ref rr, ref cr, heads, h, w, n); break;
            case SimdWidth.W256: AddAxisBiasesPerMediator<W256, Vector256<float>>(ref mr, ref rr, ref cr, heads, h, w, n); break;
            default: AddAxisBiasesPerMediator<W128, Vector128<float>>(ref mr, ref rr, ref cr, heads, h, w, n); break;
        }
    }

    private static void AddAxisBiasesPerMediator<TW, TV>(ref float maps, ref float rowBias, ref float colBias, int heads, int h, int w, int n)
        where TW : struct, ISimd<TV> where TV : struct
    {
        for (int hh = 0; hh < heads; hh++)
        for (int i = 0; i < h; i++)
        {
            ref float row = ref Unsafe.Add(ref rowBias, (hh * h + i) * n);
            for (int j = 0; j < w; j++)
            {
                ref float m = ref Unsafe.Add(ref maps, ((hh * h + i) * w + j) * n);
                ref float col = ref Unsafe.Add(ref colBias, (hh * w + j) * n);
                int k = 0;
                if (TW.IsAccelerated)
                    for (; k <= n - TW.Count; k += TW.Count)
                        TW.Store(TW.Add(TW.Add(TW.Load(ref m, (nuint)k), TW.Load(ref row, (nuint)k)), TW.Load(ref col, (nuint)k)), ref m, (nuint)k);
                for (; k < n; k++) Unsafe.Add(ref m, k) = Unsafe.Add(ref m, k) + Unsafe.Add(ref row, k) + Unsafe.Add(ref col, k);
            }
        }
    }

    /// <summary>
    /// The transpose of <see cref="AddAxisBiases(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int)"/>: dRow (count, h) += the sum over j of dMaps (count, h, w), and
    /// dCol (count, w) += the sum over i; each sum runs along the grid in order.
    /// </summary>
    public static void AxisBiasGradients(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int count, int h, int w)
        => AxisBiasGradients(dMaps, dRow, dCol, count, h, w, Simd.Widest);

    internal static void AxisBiasGradients(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int count, int h, int w, SimdWidth width)
    {
        if (dMaps.Length < (long)count * h * w || dRow.Length < (long)count * h || dCol.Length < (long)count * w)
            throw new ArgumentException("bias map gradients or axis gradients are too small.");
        ref float g = ref MemoryMarshal.GetReference(dMaps);
        ref float dr = ref MemoryMarshal.GetReference(dRow);
        ref float dc = ref MemoryMarshal.GetReference(dCol);
        switch (width)
        {
            case SimdWidth.W512: AxisBiasGradients<W512, Vector512<float>>(ref g, ref dr, ref dc, count, h, w); break;
            case SimdWidth.W256: AxisBiasGradients<W256, Vector256<float>>(ref g, ref dr, ref dc, count, h, w); break;
            default: AxisBiasGradients<W128, Vector128<float>>(ref g, ref dr, ref dc, count, h, w); break;
        }
    }

    private static void AxisBiasGradients<TW, TV>(ref float dMaps, ref float dRow, ref float dCol, int count, int h, int w)
        where TW : struct, ISimd<TV> where TV : struct
    {
        for (int c = 0; c < count; c++)
        {
            ref float col = ref Unsafe.Add(ref dCol, c * w);
            for (int i = 0; i < h; i++)
            {
                ref float row = ref Unsafe.Add(ref dMaps, (c * h + i) * w);
                // Column sums: one grid row at a time, in row order (vectors along the row).
                int j = 0;
                if (TW.IsAccelerated)
                    for (; j <= w - TW.Count; j += TW.Count)
                        TW.Store(TW.Add(TW.Load(ref col, (nuint)j), TW.Load(ref row, (nuint)j)), ref col, (nuint)j);
                for (; j < w; j++) Unsafe.Add(ref col, j) += Unsafe.Add(ref row, j);
                // The row's own sum, element by element in order.
                ref float r = ref Unsafe.Add(ref dRow, c * h + i);
                for (j = 0; j < w; j++) r += Unsafe.Add(ref row, j);
            }
        }
    }

    /// <summary>
    /// The transpose of <see cref="AddAxisBiasesPerMediator(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, int)"/>: dRow (heads, h, n) += the sum over j of
    /// dMaps (heads, h, w, n), dCol (heads, w, n) += the sum over i, each in grid order.
    /// </summary>
    public static void AxisBiasGradientsPerMediator(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int heads, int h, int w, int n)
        => AxisBiasGradientsPerMediator(dMaps, dRow, dCol, heads, h, w, n, Simd.Widest);

    internal static void AxisBiasGradientsPerMediator(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int heads, int h, int w,
        int n, SimdWidth width)
    {
        if (dMaps.Length < (long)heads * h * w * n || dRow.Length < (long)heads * h * n || dCol.Length < (long)heads * w * n)
            throw new ArgumentException("bias map gradients or axis gradients are too small.");
        ref float g = ref MemoryMarshal.GetReference(dMaps);
        ref float dr = ref MemoryMarshal.GetReference(dRow);
        ref float dc = ref MemoryMarshal.GetReference(dCol);
        switch (width)
        {
            case SimdWidth.W512: AxisBiasGradientsPerMediator<W512, Vector512<float>>(ref g, ref dr, ref dc, heads, h, w, n); break;
            case SimdWidth.W256: AxisBiasGradientsPerMediator<W256, Vector256<float>>(ref g, ref dr, ref dc, heads, h, w, n); break;
            default: AxisBiasGradientsPerMediator<W128, Vector128<float>>(ref g, ref dr, ref dc, heads, h, w, n); break;
        }
    }

    private static void AxisBiasGradientsPerMediator<TW, TV>(ref float dMaps, ref float dRow, ref float dCol, int heads, int h, int w, int n)
        where TW : struct, ISimd<TV> where TV : struct
    {
        for (int hh = 0; hh < heads; hh++)
        for (int i = 0; i < h; i++)
        {
            ref float row = ref Unsafe.Add(ref dRow, (hh * h + i) * n);
            for (int j = 0; j < w; j++)
            {
                ref float m = ref Unsafe.Add(ref dMaps, ((hh * h + i) * w + j) * n);
                ref float col = ref Unsafe.Add(ref dCol, (hh * w + j) * n);
                int k = 0;
                if (TW.IsAccelerated)
                    for (; k <= n - TW.Count; k += TW.Count)
                    {
                        var gv = TW.Load(ref m, (nuint)k);
                        TW.Store(TW.Add(TW.Load(ref row, (nuint)k), gv), ref row, (nuint)k);
                        TW.Store(TW.Add(TW.Load(ref col, (nuint)k), gv), ref col, (nuint)k);
                    }
                for (; k < n; k++)
                {
                    Unsafe.Add(ref row, k) += Unsafe.Add(ref m, k);
                    Unsafe.Add(ref col, k) += Unsafe.Add(ref m, k);
                }
            }
        }
    }

    /// <summary>dst (count, cols, rows) = the transpose of each of src's count (rows, cols) matrices, in 8 x 8 tiles.</summary>
    public static void Transpose(ReadOnlySpan<float> src, Span<float> dst, int count, int rows, int cols)
    {
        long size = (long)rows * cols;
        if (src.Length < count * size || dst.Length < count * size) throw new ArgumentException("src or dst is too small.");
        const int tile = 8;
        for (int c = 0; c < count; c++)
        {
            var s = src.Slice((int)(c * size), (int)size);
            var d = dst.Slice((int)(c * size), (int)size);
            for (int r0 = 0; r0 < rows; r0 += tile)
            for (int c0 = 0; c0 < cols; c0 += tile)
            for (int r = r0; r < Math.Min(r0 + tile, rows); r++)
            for (int k = c0; k < Math.Min(c0 + tile, cols); k++)
                d[k * rows + r] = s[r * cols + k];
        }
    }
}

/// <summary>The plain loops <see cref="MediatorBiases"/> must equal bit for bit.</summary>
internal static class ReferenceMediatorBiases
{
    public static void AddAxisBiases(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias, int count, int h, int w)
    {
        for (int c = 0; c < count; c++)
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            maps[(c * h + i) * w + j] += rowBias[c * h + i] + colBias[c * w + j];
    }

    public static void AddAxisBiasesPerMediator(Span<float> maps, ReadOnlySpan<float> rowBias, ReadOnlySpan<float> colBias,
        int heads, int h, int w, int n)
    {
        for (int hh = 0; hh < heads; hh++)
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        for (int m = 0; m < n; m++)
        {
            int o = ((hh * h + i) * w + j) * n + m;
            maps[o] = maps[o] + rowBias[(hh * h + i) * n + m] + colBias[(hh * w + j) * n + m];
        }
    }

    public static void AxisBiasGradients(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int count, int h, int w)
    {
        for (int c = 0; c < count; c++)
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        {
            float g = dMaps[(c * h + i) * w + j];
            dRow[c * h + i] += g;
            dCol[c * w + j] += g;
        }
    }

    public static void AxisBiasGradientsPerMediator(ReadOnlySpan<float> dMaps, Span<float> dRow, Span<float> dCol, int heads, int h, int w, int n)
    {
        for (int hh = 0; hh < heads; hh++)
        for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
        for (int m = 0; m < n; m++)
        {
            float g = dMaps[((hh * h + i) * w + j) * n + m];
            dRow[(hh * h + i) * n + m] += g;
            dCol[(hh * w + j) * n + m] += g;
        }
    }

    public static void Transpose(ReadOnlySpan<float> src, Span<float> dst, int count, int rows, int cols)
    {
        for (int c = 0; c < count; c++)
        for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++)
            dst[(c * cols + k) * rows + r] = src[(c * rows + r) * cols + k];
    }
}
