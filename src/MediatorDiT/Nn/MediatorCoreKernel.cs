using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MediatorDiT.Tensors;

namespace MediatorDiT.Nn;

/// <summary>
/// The per-(image, head) core of mediator attention in one pass over L1-resident buffers, in place of a pooling,
/// four small packed GEMMs (0.5 MFLOP each: packing costs more than the arithmetic), 16 + N softmax calls and
/// the depthwise conv. For one head, with N = gridH * gridW tokens, n = medGrid^2 mediators, hd channels:
///   T = adaptive-avg-pool(q) (n, hd);  A1 = softmax(s T k^T + bias1) (n, N);  Vm = A1 v (n, hd);
///   A2 = softmax(s q T^T + bias2) (N, n);  O = A2 Vm + dwc(v) (N, hd).
/// q and v are first copied into line-aligned contiguous scratch. The logits are broadcast-FMA products against
/// sT^T (hd, n padded to whole vectors): one row of n = 16 logits is one zmm, eight rows at a time. The key softmax
/// runs down the columns of logits^T and turns 16 x 16 blocks over in registers into A1; the query softmax stays
/// in registers. The products with A1 and A2 keep a 4-row x 2-vector block in registers; the depthwise conv keeps
/// one channel vector's nine taps in registers and adds onto A2 Vm one grid row at a time on the way to O.
/// Column tails of hd are done by one more vector that overlaps the last full one (recomputing the same values),
/// so hd = 72 costs no scalar loop. Strided rows and output lines are prefetched ahead of use. Writes T, A1, A2, Vm and O exactly as <see cref="ReferenceMediatorCore"/>
/// does (what the backward reads). Written once over <see cref="ISimd{TV}"/> and run at <see cref="Simd.Widest"/>:
/// 512, 256 or 128 bits (ARM64), the reference where no vectors are accelerated. Like the other row kernels (and
/// unlike the GEMM, whose paths agree bit for bit) it does not follow ManagedGemm.ForceVector256: its widths differ
/// by float rounding, and a process-wide switch flipped between two forwards would make them differ.
/// </summary>
[SkipLocalsInit]
internal static partial class MediatorCoreKernel
{
    /// <summary>One (image, head) of mediator attention, at the widest accelerated vector width.</summary>
    /// <param name="q">this head's queries: token r's hd channels at q[r * xStride ..]; likewise k and v</param>
    /// <param name="k">this head's keys, laid out as q</param>
    /// <param name="v">this head's values, laid out as q</param>
    /// <param name="xStride">floats between consecutive tokens' rows of q, k and v (at least hd)</param>
    /// <param name="bias1T">(N, n): the transpose of bias1 (n, N), added to the mediator-to-key logits</param>
    /// <param name="bias2">(N, n) added to the query-to-mediator logits</param>
    /// <param name="taps">depthwise taps of this head's channels: tap t of channel c at taps[t * tapStride + c]</param>
    /// <param name="tapStride">floats between consecutive taps (at least hd)</param>
    /// <param name="dwcBias">(hd): the depthwise conv's bias for this head's channels</param>
    /// <param name="tokens">T (n rows, tokenStride apart)</param>
    /// <param name="tokenStride">floats between consecutive rows of T (at least hd)</param>
    /// <param name="a1">A1 (n, N), the mediator-to-key probabilities, overwritten</param>
    /// <param name="a2">A2 (N, n), the query-to-mediator probabilities, overwritten</param>
    /// <param name="vm">Vm = A1 v (n, hd), overwritten</param>
    /// <param name="o">O (N rows, oStride apart), overwritten</param>
    /// <param name="oStride">floats between consecutive rows of O (at least hd)</param>
    /// <param name="gridH">token grid height</param>
    /// <param name="gridW">token grid width; N = gridH * gridW</param>
    /// <param name="medGrid">mediator grid side; n = medGrid^2</param>
    /// <param name="headDim">hd, channels per head</param>
    /// <param name="scale">s, the logit scale (1 / sqrt(hd))</param>
    /// <exception cref="ArgumentException">A buffer is too small for the grid, mediators and head size.</exception>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> bias1T, ReadOnlySpan<float> bias2, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> dwcBias,
        Span<float> tokens, int tokenStride, Span<float> a1, Span<float> a2, Span<float> vm, Span<float> o, int oStride,
        int gridH, int gridW, int medGrid, int headDim, float scale)
        => Forward(q, k, v, xStride, bias1T, bias2, taps, tapStride, dwcBias, tokens, tokenStride, a1, a2, vm, o, oStride,
            gridH, gridW, medGrid, headDim, scale, Simd.Widest);

    /// <summary>As above with the vector width chosen by the caller (tests compare the paths).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> bias1T, ReadOnlySpan<float> bias2, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> dwcBias,
        Span<float> tokens, int tokenStride, Span<float> a1, Span<float> a2, Span<float> vm, Span<float> o, int oStride,
        int gridH, int gridW, int medGrid, int headDim, float scale, SimdWidth width)
    {
        int N = gridH * gridW, n = medGrid * medGrid, hd = headDim;
        long lastRow = (long)(N - 1) * xStride + hd;
        if (q.Length < lastRow || k.Length < lastRow || v.Length < lastRow || xStride < hd
            || bias1T.Length < N * n || bias2.Length < N * n || taps.Length < 8L * tapStride + hd || tapStride < hd || dwcBias.Length < hd
            || tokens.Length < (long)(n - 1) * tokenStride + hd || tokenStride < hd || a1.Length < n * N || a2.Length < N * n
            || vm.Length < n * hd || o.Length < (long)(N - 1) * oStride + hd || oStride < hd)
            throw new ArgumentException("mediator core buffers are too small for the grid, mediators and head size.");
        var g = new Geometry(gridH, gridW, medGrid, hd, xStride, tokenStride, tapStride, oStride, scale);
        if (width == SimdWidth.W512)
            Run<W512, Vector512<float>>(g, q, k, v, bias1T, bias2, taps, dwcBias, tokens, a1, a2, vm, o);
        else if (width == SimdWidth.W256)
            Run<W256, Vector256<float>>(g, q, k, v, bias1T, bias2, taps, dwcBias, tokens, a1, a2, vm, o);
        else if (Vector128.IsHardwareAccelerated)
            Run<W128, Vector128<float>>(g, q, k, v, bias1T, bias2, taps, dwcBias, tokens, a1, a2, vm, o);
        else
            ReferenceMediatorCore.Forward(q, k, v, xStride, bias1T, bias2, taps, tapStride, dwcBias, tokens, tokenStride,
                a1, a2, vm, o, oStride, gridH, gridW, medGrid, headDim, scale);
    }

    /// <summary>Asks for the cache lines of one row of <paramref name="floats"/> floats, where the CPU offers the hint.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchRow(ref float row, int floats)
    {
        if (!Sse.IsSupported) return;
        byte* p = (byte*)Unsafe.AsPointer(ref row);
        for (int b = 0; b < floats * 4; b += 64) Sse.Prefetch0(p + b);
        Sse.Prefetch0(p + floats * 4 - 1);
    }

    private static int Align16(int floats) => (floats + 15) & ~15;

    /// <summary>Floats to skip from the array's start to the next 64-byte boundary (the scratch arrays are pinned).</summary>
    private static unsafe int LineOffset(float[] array) =>
        (int)((64 - ((nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array)) & 63)) & 63) / 4;

    private readonly record struct Geometry(int GridH, int GridW, int MedGrid, int Hd, int XStride, int TokenStride,
        int TapStride, int OStride, float Scale);

    private static void Run<TW, TV>(in Geometry g, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> bias1T, ReadOnlySpan<float> bias2, ReadOnlySpan<float> taps, ReadOnlySpan<float> dwcBias,
        Span<float> tokens, Span<float> a1, Span<float> a2, Span<float> vm, Span<float> o)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, N = g.GridH * g.GridW, n = g.MedGrid * g.MedGrid, hd = g.Hd, xs = g.XStride;
        int np = (n + W - 1) / W * W; // mediator columns padded to whole vectors
        int gh = g.GridH, gw = g.GridW, os = g.OStride, pw = gw + 2;
        // Scratch: sT^T (hd, np), logits (N, np), 2 * np floats of room, contiguous copies of q and v (N, hd), Vm
        // (n, hd), one grid row of O (gw, hd) and v in a zero-bordered grid (gh + 2, gw + 2, hd). The copies matter: q, k, v rows lie 3 * dim floats apart,
        // which maps a head's rows onto a few cache sets, so every second pass over them would come from L3.
        // Every region starts on a 64-byte line (the arrays are only 8-byte aligned): a misaligned zmm load
        // touches two lines.
        int ttLen = Align16(hd * np), logitsLen = Align16(N * np), padLen = Align16(2 * np), rowsLen = Align16(N * hd);
        var scratch = ScratchBuffers.Get(2, 16 + ttLen + logitsLen + padLen + 2 * rowsLen + Align16(n * hd) + Align16(gw * hd)
            + (gh + 2) * pw * hd);
        ref float tt = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(scratch), LineOffset(scratch));
        ref float logits = ref Unsafe.Add(ref tt, ttLen);
        ref float pad = ref Unsafe.Add(ref logits, logitsLen);
        ref float qc = ref Unsafe.Add(ref pad, padLen);
        ref float vc = ref Unsafe.Add(ref qc, rowsLen);
        ref float vmc = ref Unsafe.Add(ref vc, rowsLen);
        ref float gridRow = ref Unsafe.Add(ref vmc, Align16(n * hd));
        ref float grid = ref Unsafe.Add(ref gridRow, Align16(gw * hd));
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float kr = ref MemoryMarshal.GetReference(k);
        ref float vr = ref MemoryMarshal.GetReference(v);
        ref float p1 = ref MemoryMarshal.GetReference(a1);
        ref float p2 = ref MemoryMarshal.GetReference(a2);
        ref float orr = ref MemoryMarshal.GetReference(o);
        ref float tapr = ref MemoryMarshal.GetReference(taps);
        ref float dbr = ref MemoryMarshal.GetReference(dwcBias);

        // T = pool(q), from the contiguous copy, and sT^T with zero padding columns.
        Copy<TW, TV>(ref qr, xs, N, hd, ref qc);
        Pool<TW, TV>(g, ref qc, ref MemoryMarshal.GetReference(tokens));
        for (int c = 0; c < hd; c++)
        {
            for (int m = 0; m < n; m++) Unsafe.Add(ref tt, c * np + m) = g.Scale * tokens[m * g.TokenStride + c];
            for (int m = n; m < np; m++) Unsafe.Add(ref tt, c * np + m) = 0f;
        }

        // Mediators gather from the keys: logits^T (N, np) = k sT^T, softmax down each column into A1 (n, N).
        // The outputs A1, A2 (and O below) were last written a layer ago: ask for their lines ahead of the stores.
        PrefetchRow(ref p1, n * N);
        PrefetchRow(ref p2, N * n);
        Logits<TW, TV>(ref kr, xs, N, ref tt, hd, np, ref logits);
        KeySoftmax<TW, TV>(ref logits, np, N, n, bias1T, ref p1, ref pad);
        // Vm = A1 v (n, hd), from a contiguous copy of v (the product passes over v once per 4 x 2 block).
        Copy<TW, TV>(ref vr, xs, N, hd, ref vc);
        Product2<TW, TV>(ref p1, N, 1, n, N, ref vc, hd, ref vmc, hd, hd, 1f, accumulate: false);
        MemoryMarshal.CreateReadOnlySpan(ref vmc, n * hd).CopyTo(vm);

        // Queries read from the mediators: A2 = softmax(q sT^T + bias2) (N, n), O = A2 Vm + dwc(v) (N, hd).
        Logits<TW, TV>(ref qc, hd, N, ref tt, hd, np, ref logits);
        QuerySoftmax<TW, TV>(ref logits, np, N, n, bias2, a2, ref pad);
        if (hd < W)
        {
            Product2<TW, TV>(ref p2, n, 1, N, n, ref vmc, hd, ref orr, os, hd, 1f, accumulate: false);
            DepthwiseConv3x3.Forward(v, xs, taps, g.TapStride, dwcBias, o, os, gh, gw, hd, accumulate: true);
        }
        else
        {
            // v into the zero-bordered grid, so every token takes all nine taps (an out-of-grid neighbour adds
            // 0 * tap, exactly nothing).
            BorderedCopy<TW, TV>(ref vc, hd, gh, gw, hd, ref grid);

            // One grid row at a time: A2 Vm into an aligned row buffer (L1), then the conv adds to it on the way to O,
            // so each O line is written once.
            for (int j = 0; j < Math.Min(gw, N); j++) PrefetchRow(ref Unsafe.Add(ref orr, j * os), hd);
            for (int i = 0; i < gh; i++)
            {
                ref float oi = ref Unsafe.Add(ref orr, i * gw * os);
                if (i + 1 < gh)
                    for (int j = 0; j < gw; j++) PrefetchRow(ref Unsafe.Add(ref oi, (gw + j) * os), hd);
                Product2<TW, TV>(ref Unsafe.Add(ref p2, i * gw * n), n, 1, gw, n, ref vmc, hd, ref gridRow, hd, hd, 1f, accumulate: false);
                DepthwiseRow<TW, TV>(ref Unsafe.Add(ref grid, i * pw * hd), pw * hd, gw, hd, ref tapr, g.TapStride, ref dbr,
                    ref gridRow, ref oi, os);
            }
        }
    }

    /// <summary>
    /// A1 (n, N) = softmax over the keys of logits^T (N, np) + bias1T, one vector of mediators at a time: the
    /// maximum, exp and sum run down the columns, lane by lane, with no cross-lane step; the probabilities are
    /// scattered into A1's rows. Lanes past n are computed on padding and never stored.
    /// </summary>
    private static void KeySoftmax<TW, TV>(ref float logits, int np, int keys, int n, ReadOnlySpan<float> bias1T, ref float a1, ref float pad)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, total = keys * n;
        ref float br = ref MemoryMarshal.GetReference(bias1T);
        for (int c = 0; c < np; c += W)
        {
            int count = Math.Min(W, n - c);
            var mx = TW.Splat(float.NegativeInfinity);
            for (int j = 0; j < keys; j++)
            {
                ref float z = ref Unsafe.Add(ref logits, j * np + c);
                int bo = j * n + c;
                TV b;
                if (bo + W <= total) b = TW.Load(ref Unsafe.Add(ref br, bo));
                else
                {
                    // The last rows: a full vector would read past bias1T.
                    TW.Store(TW.Zero, ref pad);
                    MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref br, bo), count).CopyTo(MemoryMarshal.CreateSpan(ref pad, count));
                    b = TW.Load(ref pad);
                }
                var zv = TW.Add(TW.Load(ref z), b);
                TW.Store(zv, ref z);
                mx = TW.Max(mx, zv);
            }
            TV s0 = TW.Zero, s1 = TW.Zero;
            int jj = 0;
            for (; jj + 2 <= keys; jj += 2)
            {
                ref float z = ref Unsafe.Add(ref logits, jj * np + c);
                var e0 = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(TW.Load(ref z), mx));
                var e1 = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(TW.Load(ref Unsafe.Add(ref z, np)), mx));
                TW.Store(e0, ref z);
                TW.Store(e1, ref Unsafe.Add(ref z, np));
                s0 = TW.Add(s0, e0);
                s1 = TW.Add(s1, e1);
            }
            if (jj < keys)
            {
                ref float z = ref Unsafe.Add(ref logits, jj * np + c);
                var e0 = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(TW.Load(ref z), mx));
                TW.Store(e0, ref z);
                s0 = TW.Add(s0, e0);
            }
            var inv = TW.Divide(TW.Splat(1f), TW.Add(s0, s1));
            ref float dst = ref Unsafe.Add(ref a1, c * keys);
            int key = 0;
            // Whole W x W blocks turn over in registers (full-line stores); the rest one probability at a time.
            if (count == W && TW.CanTranspose)
                for (; key + W <= keys; key += W)
                    TW.TransposeScaled(ref Unsafe.Add(ref logits, key * np + c), np, inv, ref Unsafe.Add(ref dst, key), keys);
            for (; key < keys; key++)
            {
                TW.Store(TW.Multiply(TW.Load(ref Unsafe.Add(ref logits, key * np + c)), inv), ref pad);
                for (int m = 0; m < count; m++) Unsafe.Add(ref dst, m * keys + key) = Unsafe.Add(ref pad, m);
            }
        }
    }

    /// <summary>grid (gh + 2, gw + 2, hd) = v (gh * gw rows, xs apart) with a zero border one token wide.</summary>
    private static void BorderedCopy<TW, TV>(ref float v, int xs, int gh, int gw, int hd, ref float grid)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, pw = gw + 2;
        MemoryMarshal.CreateSpan(ref grid, (pw + 1) * hd).Clear();
        for (int i = 0; i < gh; i++)
        {
            ref float dst = ref Unsafe.Add(ref grid, ((i + 1) * pw + 1) * hd);
            for (int j = 0; j < gw; j++)
            {
                ref float src = ref Unsafe.Add(ref v, (i * gw + j) * xs);
                ref float d = ref Unsafe.Add(ref dst, j * hd);
                for (int col = 0; col < hd; col += W)
                {
                    int c0 = Math.Min(col, hd - W);
                    TW.Store(TW.Load(ref Unsafe.Add(ref src, c0)), ref Unsafe.Add(ref d, c0));
                }
            }
            // This row's right border cell and the next row's left one.
            MemoryMarshal.CreateSpan(ref Unsafe.Add(ref dst, gw * hd), 2 * hd).Clear();
        }
        MemoryMarshal.CreateSpan(ref Unsafe.Add(ref grid, ((gh + 1) * pw + 1) * hd), (pw - 1) * hd).Clear();
    }

    /// <summary>
    /// o (gw rows, os apart) = prev (gw rows, hd apart) + dwc(v) + bias for one grid row, from the bordered grid whose
    /// row above this one starts at <paramref name="up"/> (rows <paramref name="rowStep"/> floats apart, tokens hd
    /// apart). One channel vector at a time with its nine taps in registers; each kernel row has its own partial sum
    /// (three short FMA chains instead of one of nine). A column tail overlapping the previous vector recomputes the
    /// shared lanes with the same operations, so it stores the same values there.
    /// </summary>
    private static void DepthwiseRow<TW, TV>(ref float up, int rowStep, int gw, int hd, ref float taps, int ts, ref float bias,
        ref float prev, ref float o, int os)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        for (int col = 0; col < hd; col += W)
        {
            int c0 = Math.Min(col, hd - W);
            ref float tc = ref Unsafe.Add(ref taps, c0);
            TV t0 = TW.Load(ref tc), t1 = TW.Load(ref Unsafe.Add(ref tc, ts)), t2 = TW.Load(ref Unsafe.Add(ref tc, 2 * ts));
            TV t3 = TW.Load(ref Unsafe.Add(ref tc, 3 * ts)), t4 = TW.Load(ref Unsafe.Add(ref tc, 4 * ts)), t5 = TW.Load(ref Unsafe.Add(ref tc, 5 * ts));
            TV t6 = TW.Load(ref Unsafe.Add(ref tc, 6 * ts)), t7 = TW.Load(ref Unsafe.Add(ref tc, 7 * ts)), t8 = TW.Load(ref Unsafe.Add(ref tc, 8 * ts));
            var bv = TW.Load(ref Unsafe.Add(ref bias, c0));
            ref float u0 = ref Unsafe.Add(ref up, c0);
            for (int j = 0; j < gw; j++)
            {
                ref float xu = ref Unsafe.Add(ref u0, j * hd);
                ref float xm = ref Unsafe.Add(ref xu, rowStep);
                ref float xd = ref Unsafe.Add(ref xm, rowStep);
                var acc = TW.Fma(TW.Load(ref xu), t0, TW.Add(TW.Load(ref Unsafe.Add(ref prev, j * hd + c0)), bv));
                var mid = TW.Multiply(TW.Load(ref xm), t3);
                var low = TW.Multiply(TW.Load(ref xd), t6);
                acc = TW.Fma(TW.Load(ref Unsafe.Add(ref xu, hd)), t1, acc);
                mid = TW.Fma(TW.Load(ref Unsafe.Add(ref xm, hd)), t4, mid);
                low = TW.Fma(TW.Load(ref Unsafe.Add(ref xd, hd)), t7, low);
                acc = TW.Fma(TW.Load(ref Unsafe.Add(ref xu, 2 * hd)), t2, acc);
                mid = TW.Fma(TW.Load(ref Unsafe.Add(ref xm, 2 * hd)), t5, mid);
                low = TW.Fma(TW.Load(ref Unsafe.Add(ref xd, 2 * hd)), t8, low);
                TW.Store(TW.Add(acc, TW.Add(mid, low)), ref Unsafe.Add(ref o, j * os + c0));
            }
        }
    }

    /// <summary>T (n, hd) = adaptive average pool of q (N, hd); the bins add their rows in order, then scale (as the reference).</summary>
    private static void Pool<TW, TV>(in Geometry g, ref float q, ref float t)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, hd = g.Hd, mg = g.MedGrid, gw = g.GridW;
        for (int bi = 0; bi < mg; bi++)
        {
            var (h0, h1) = AdaptiveAvgPool.Bin(bi, g.GridH, mg);
            for (int bj = 0; bj < mg; bj++)
            {
                var (w0, w1) = AdaptiveAvgPool.Bin(bj, gw, mg);
                float inv = 1f / ((h1 - h0) * (w1 - w0));
                ref float dst = ref Unsafe.Add(ref t, (bi * mg + bj) * g.TokenStride);
                if (hd >= W)
                {
                    var vinv = TW.Splat(inv);
                    for (int col = 0; col < hd; col += W)
                    {
                        int c0 = Math.Min(col, hd - W);
                        var acc = TW.Zero;
                        for (int a = h0; a < h1; a++)
                        for (int b = w0; b < w1; b++)
                            acc = TW.Add(acc, TW.Load(ref Unsafe.Add(ref q, (a * gw + b) * hd + c0)));
                        TW.Store(TW.Multiply(acc, vinv), ref Unsafe.Add(ref dst, c0));
                    }
                }
                else
                {
                    for (int c = 0; c < hd; c++)
                    {
                        float acc = 0f;
                        for (int a = h0; a < h1; a++)
                        for (int b = w0; b < w1; b++)
                            acc += Unsafe.Add(ref q, (a * gw + b) * hd + c);
                        Unsafe.Add(ref dst, c) = acc * inv;
                    }
                }
            }
        }
    }

    /// <summary>
    /// dst (rows, cols) contiguous = src (rows, cols; rows xs apart), in row order with the row 8 ahead prefetched:
    /// the source is a head's slice of the qkv buffer, usually no nearer than L3.
    /// </summary>
    private static void Copy<TW, TV>(ref float src, int xs, int rows, int cols, ref float dst)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        for (int r = 0; r < rows; r++)
        {
            if (r + 8 < rows) PrefetchRow(ref Unsafe.Add(ref src, (r + 8) * xs), cols);
            ref float s = ref Unsafe.Add(ref src, r * xs);
            ref float d = ref Unsafe.Add(ref dst, r * cols);
            if (cols < W) MemoryMarshal.CreateReadOnlySpan(ref s, cols).CopyTo(MemoryMarshal.CreateSpan(ref d, cols));
            else
                for (int col = 0; col < cols; col += W)
                {
                    int c0 = Math.Min(col, cols - W);
                    TW.Store(TW.Load(ref Unsafe.Add(ref s, c0)), ref Unsafe.Add(ref d, c0));
                }
        }
    }

    /// <summary>
    /// dst (rows, np) = x (rows, hd; rows xs apart) times tt (hd, np): each x element is broadcast against a vector
    /// of tt's row, eight rows at a time so eight independent FMA chains are in flight.
    /// </summary>
    private static void Logits<TW, TV>(ref float x, int xs, int rows, ref float tt, int hd, int np, ref float dst)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, r = 0;
        if (np >= 2 * W)
        {
            LogitsWide<TW, TV>(ref x, xs, rows, ref tt, hd, np, ref dst);
            return;
        }
        for (; r + 8 <= rows; r += 8)
        {
            ref float x0 = ref Unsafe.Add(ref x, r * xs);
            ref float x1 = ref Unsafe.Add(ref x0, xs);
            ref float x2 = ref Unsafe.Add(ref x1, xs);
            ref float x3 = ref Unsafe.Add(ref x2, xs);
            ref float x4 = ref Unsafe.Add(ref x3, xs);
            ref float x5 = ref Unsafe.Add(ref x4, xs);
            ref float x6 = ref Unsafe.Add(ref x5, xs);
            ref float x7 = ref Unsafe.Add(ref x6, xs);
            ref float d0 = ref Unsafe.Add(ref dst, r * np);
            // x may be k in place (rows far apart, not yet in cache): ask for the next block's rows.
            for (int i = r + 8; i < Math.Min(r + 16, rows); i++) PrefetchRow(ref Unsafe.Add(ref x, i * xs), hd);
            for (int c = 0; c < np; c += W)
            {
                TV s0 = TW.Zero, s1 = TW.Zero, s2 = TW.Zero, s3 = TW.Zero, s4 = TW.Zero, s5 = TW.Zero, s6 = TW.Zero, s7 = TW.Zero;
                ref float tc = ref Unsafe.Add(ref tt, c);
                for (int kk = 0; kk < hd; kk++)
                {
                    var tv = TW.Load(ref Unsafe.Add(ref tc, kk * np));
                    s0 = TW.Fma(TW.Splat(Unsafe.Add(ref x0, kk)), tv, s0);
                    s1 = TW.Fma(TW.Splat(Unsafe.Add(ref x1, kk)), tv, s1);
                    s2 = TW.Fma(TW.Splat(Unsafe.Add(ref x2, kk)), tv, s2);
                    s3 = TW.Fma(TW.Splat(Unsafe.Add(ref x3, kk)), tv, s3);
                    s4 = TW.Fma(TW.Splat(Unsafe.Add(ref x4, kk)), tv, s4);
                    s5 = TW.Fma(TW.Splat(Unsafe.Add(ref x5, kk)), tv, s5);
                    s6 = TW.Fma(TW.Splat(Unsafe.Add(ref x6, kk)), tv, s6);
                    s7 = TW.Fma(TW.Splat(Unsafe.Add(ref x7, kk)), tv, s7);
                }
                TW.Store(s0, ref Unsafe.Add(ref d0, c));
                TW.Store(s1, ref Unsafe.Add(ref d0, np + c));
                TW.Store(s2, ref Unsafe.Add(ref d0, 2 * np + c));
                TW.Store(s3, ref Unsafe.Add(ref d0, 3 * np + c));
                TW.Store(s4, ref Unsafe.Add(ref d0, 4 * np + c));
                TW.Store(s5, ref Unsafe.Add(ref d0, 5 * np + c));
                TW.Store(s6, ref Unsafe.Add(ref d0, 6 * np + c));
                TW.Store(s7, ref Unsafe.Add(ref d0, 7 * np + c));
            }
        }
        for (; r < rows; r++)
        {
            ref float x0 = ref Unsafe.Add(ref x, r * xs);
            for (int c = 0; c < np; c += W)
            {
                var s0 = TW.Zero;
                for (int kk = 0; kk < hd; kk++)
                    s0 = TW.Fma(TW.Splat(Unsafe.Add(ref x0, kk)), TW.Load(ref Unsafe.Add(ref tt, kk * np + c)), s0);
                TW.Store(s0, ref Unsafe.Add(ref dst, r * np + c));
            }
        }
    }

    /// <summary>
    /// <see cref="Logits{TW, TV}"/> for rows of at least two vectors: 4 rows x 2 vectors in registers (two loads and
    /// four broadcasts per eight FMAs, where 8 x 1 needs eight broadcasts), an odd last vector 4 x 1, then single
    /// rows. Every element is the same FMA chain over the hd terms in order, so the values equal the 8 x 1 path's.
    /// </summary>
    private static void LogitsWide<TW, TV>(ref float x, int xs, int rows, ref float tt, int hd, int np, ref float dst)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            ref float x0 = ref Unsafe.Add(ref x, r * xs);
            ref float x1 = ref Unsafe.Add(ref x0, xs);
            ref float x2 = ref Unsafe.Add(ref x1, xs);
            ref float x3 = ref Unsafe.Add(ref x2, xs);
            ref float d0 = ref Unsafe.Add(ref dst, r * np);
            // x may be k in place (rows far apart, not yet in cache): ask for the next block's rows.
            for (int i = r + 4; i < Math.Min(r + 8, rows); i++) PrefetchRow(ref Unsafe.Add(ref x, i * xs), hd);
            int c = 0;
            for (; c + 2 * W <= np; c += 2 * W)
            {
                TV a0 = TW.Zero, a1 = TW.Zero, b0 = TW.Zero, b1 = TW.Zero, c0 = TW.Zero, c1 = TW.Zero, e0 = TW.Zero, e1 = TW.Zero;
                ref float tc = ref Unsafe.Add(ref tt, c);
                for (int kk = 0; kk < hd; kk++)
                {
                    ref float tk = ref Unsafe.Add(ref tc, kk * np);
                    var t0 = TW.Load(ref tk);
                    var t1 = TW.Load(ref Unsafe.Add(ref tk, W));
                    var sp = TW.Splat(Unsafe.Add(ref x0, kk));
                    a0 = TW.Fma(sp, t0, a0);
                    a1 = TW.Fma(sp, t1, a1);
                    sp = TW.Splat(Unsafe.Add(ref x1, kk));
                    b0 = TW.Fma(sp, t0, b0);
                    b1 = TW.Fma(sp, t1, b1);
                    sp = TW.Splat(Unsafe.Add(ref x2, kk));
                    c0 = TW.Fma(sp, t0, c0);
                    c1 = TW.Fma(sp, t1, c1);
                    sp = TW.Splat(Unsafe.Add(ref x3, kk));
                    e0 = TW.Fma(sp, t0, e0);
                    e1 = TW.Fma(sp, t1, e1);
                }
                ref float dc = ref Unsafe.Add(ref d0, c);
                TW.Store(a0, ref dc);
                TW.Store(a1, ref Unsafe.Add(ref dc, W));
                TW.Store(b0, ref Unsafe.Add(ref dc, np));
                TW.Store(b1, ref Unsafe.Add(ref dc, np + W));
                TW.Store(c0, ref Unsafe.Add(ref dc, 2 * np));
                TW.Store(c1, ref Unsafe.Add(ref dc, 2 * np + W));
                TW.Store(e0, ref Unsafe.Add(ref dc, 3 * np));
                TW.Store(e1, ref Unsafe.Add(ref dc, 3 * np + W));
            }
            if (c < np)
            {
                TV a0 = TW.Zero, b0 = TW.Zero, c0 = TW.Zero, e0 = TW.Zero;
                ref float tc = ref Unsafe.Add(ref tt, c);
                for (int kk = 0; kk < hd; kk++)
                {
                    var t0 = TW.Load(ref Unsafe.Add(ref tc, kk * np));
                    a0 = TW.Fma(TW.Splat(Unsafe.Add(ref x0, kk)), t0, a0);
                    b0 = TW.Fma(TW.Splat(Unsafe.Add(ref x1, kk)), t0, b0);
                    c0 = TW.Fma(TW.Splat(Unsafe.Add(ref x2, kk)), t0, c0);
                    e0 = TW.Fma(TW.Splat(Unsafe.Add(ref x3, kk)), t0, e0);
                }
                ref float dc = ref Unsafe.Add(ref d0, c);
                TW.Store(a0, ref dc);
                TW.Store(b0, ref Unsafe.Add(ref dc, np));
                TW.Store(c0, ref Unsafe.Add(ref dc, 2 * np));
                TW.Store(e0, ref Unsafe.Add(ref dc, 3 * np));
            }
        }
        for (; r < rows; r++)
        {
            ref float x0 = ref Unsafe.Add(ref x, r * xs);
            for (int c = 0; c < np; c += W)
            {
                var s0 = TW.Zero;
                for (int kk = 0; kk < hd; kk++)
                    s0 = TW.Fma(TW.Splat(Unsafe.Add(ref x0, kk)), TW.Load(ref Unsafe.Add(ref tt, kk * np + c)), s0);
                TW.Store(s0, ref Unsafe.Add(ref dst, r * np + c));
            }
        }
    }

    /// <summary>
    /// A2 rows = softmax(logits + bias2) for each query row. With n up to two vectors the row stays in registers
    /// (lanes past n masked out); longer rows of whole vectors (n = 64; 16 with 128-bit vectors) run the three
    /// passes in place in A2;
    /// other lengths go through <see cref="SoftmaxRows"/> at the same width.
    /// </summary>
    private static void QuerySoftmax<TW, TV>(ref float logits, int np, int rows, int n, ReadOnlySpan<float> bias2, Span<float> a2, ref float pad)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        ref float br = ref MemoryMarshal.GetReference(bias2);
        ref float pr = ref MemoryMarshal.GetReference(a2);
        if (np > 2 * W && n == np)
        {
            // Whole vectors (n = 64, or 16 in 128-bit vectors): the three passes over the row in place in A2, no per-row call.
            var minusInf0 = TW.Splat(float.NegativeInfinity);
            for (int r = 0; r < rows; r++)
            {
                ref float lrow = ref Unsafe.Add(ref logits, r * np);
                ref float brow = ref Unsafe.Add(ref br, r * n);
                ref float drow = ref Unsafe.Add(ref pr, r * n);
                var mx = minusInf0;
                for (int c = 0; c < n; c += W)
                {
                    var z = TW.Add(TW.Load(ref Unsafe.Add(ref lrow, c)), TW.Load(ref Unsafe.Add(ref brow, c)));
                    TW.Store(z, ref Unsafe.Add(ref drow, c));
                    mx = TW.Max(mx, z);
                }
                mx = TW.MaxAll(mx);
                var sum = TW.Zero;
                for (int c = 0; c < n; c += W)
                {
                    var e = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(TW.Load(ref Unsafe.Add(ref drow, c)), mx));
                    TW.Store(e, ref Unsafe.Add(ref drow, c));
                    sum = TW.Add(sum, e);
                }
                var inv = TW.Divide(TW.Splat(1f), TW.SumAll(sum));
                for (int c = 0; c < n; c += W)
                    TW.Store(TW.Multiply(TW.Load(ref Unsafe.Add(ref drow, c)), inv), ref Unsafe.Add(ref drow, c));
            }
            return;
        }
        if (np > 2 * W)
        {
            for (int r = 0; r < rows; r++)
            {
                MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref logits, r * np), n).CopyTo(a2.Slice(r * n, n));
                SoftmaxRows.Forward<TW, TV>(ref Unsafe.Add(ref pr, r * n), ref Unsafe.Add(ref br, r * n), n, hasBias: true);
            }
            return;
        }
        // One vector per row, or two (n = 16 with 256-bit vectors); lanes past n masked out.
        bool full = n == np, two = np == 2 * W;
        var valid0 = TW.LanesBelow(n);
        var valid1 = TW.LanesBelow(n - W);
        var minusInf = TW.Splat(float.NegativeInfinity);
        var one = TW.Splat(1f);
        for (int r = 0; r < rows; r++)
        {
            scoped ref float brow = ref Unsafe.Add(ref br, r * n);
            if (!full)
            {
                MemoryMarshal.CreateReadOnlySpan(ref brow, n).CopyTo(MemoryMarshal.CreateSpan(ref pad, n));
                brow = ref pad;
            }
            ref float lrow = ref Unsafe.Add(ref logits, r * np);
            ref float dst = ref full ? ref Unsafe.Add(ref pr, r * n) : ref pad;
            var z0 = TW.Add(TW.Load(ref lrow), TW.Load(ref brow));
            if (!two)
            {
                if (!full) z0 = TW.Select(valid0, z0, minusInf);
                var e = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(z0, TW.MaxAll(z0)));
                if (!full) e = TW.Select(valid0, e, TW.Zero);
                TW.Store(TW.Multiply(e, TW.Divide(one, TW.SumAll(e))), ref dst);
            }
            else
            {
                var z1 = TW.Add(TW.Load(ref Unsafe.Add(ref lrow, W)), TW.Load(ref Unsafe.Add(ref brow, W)));
                if (!full) z1 = TW.Select(valid1, z1, minusInf);
                var mx = TW.MaxAll(TW.Max(z0, z1));
                var e0 = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(z0, mx));
                var e1 = FastExp.ExpNonPositive<TW, TV>(TW.Subtract(z1, mx));
                if (!full) e1 = TW.Select(valid1, e1, TW.Zero);
                var inv = TW.Divide(one, TW.SumAll(TW.Add(e0, e1)));
                TW.Store(TW.Multiply(e0, inv), ref dst);
                TW.Store(TW.Multiply(e1, inv), ref Unsafe.Add(ref dst, W));
            }
            if (!full) MemoryMarshal.CreateReadOnlySpan(ref pad, n).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref pr, r * n), n));
        }
    }
}

/// <summary>
/// The plain form of <see cref="MediatorCoreKernel"/> it is tested against: the adaptive pooling, four
/// <see cref="Gemm.Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/> products, one <see cref="SoftmaxRows"/> call per row and the depthwise conv, in order.
/// </summary>
internal static partial class ReferenceMediatorCore
{
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> bias1T, ReadOnlySpan<float> bias2, ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> dwcBias,
        Span<float> tokens, int tokenStride, Span<float> a1, Span<float> a2, Span<float> vm, Span<float> o, int oStride,
        int gridH, int gridW, int medGrid, int headDim, float scale)
    {
        int N = gridH * gridW, n = medGrid * medGrid, hd = headDim;
        var bias1 = new float[n * N];
        for (int j = 0; j < N; j++)
        for (int m = 0; m < n; m++)
            bias1[m * N + j] = bias1T[j * n + m];
        AdaptiveAvgPool.Forward(q, xStride, tokens, tokenStride, gridH, gridW, hd, medGrid, medGrid);
        // A1 = softmax(s T k^T + bias1) (n, N), Vm = A1 v (n, hd).
        Gemm.Sgemm(false, true, n, N, hd, scale, tokens, tokenStride, k, xStride, 0f, a1, N);
        for (int m = 0; m < n; m++) SoftmaxRows.Forward(a1.Slice(m * N, N), bias1.AsSpan(m * N, N));
        Gemm.Sgemm(false, false, n, hd, N, 1f, a1, N, v, xStride, 0f, vm, hd);
        // A2 = softmax(s q T^T + bias2) (N, n), O = A2 Vm (N, hd) + dwc(v).
        Gemm.Sgemm(false, true, N, n, hd, scale, q, xStride, tokens, tokenStride, 0f, a2, n);
        for (int r = 0; r < N; r++) SoftmaxRows.Forward(a2.Slice(r * n, n), bias2.Slice(r * n, n));
        Gemm.Sgemm(false, false, N, hd, n, 1f, a2, n, vm, hd, 0f, o, oStride);
        DepthwiseConv3x3.Forward(v, xStride, taps, tapStride, dwcBias, o, oStride, gridH, gridW, hd, accumulate: true);
    }
}
