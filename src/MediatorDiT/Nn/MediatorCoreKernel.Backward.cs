using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MediatorDiT.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace MediatorDiT.Nn;

/// <summary>
/// The backward pass of the per-(image, head) mediator core in one call over L1/L2-resident scratch, in place of
/// eight small GEMM calls (each paying its own checks, dispatch and packing on products of 25 to 400 thousand
/// multiply-adds), N + n softmax-backward calls, the depthwise conv's backward and the pooling's transpose.
/// Given dO (N, hd), the forward's A1 (n, N), A2 (N, n), Vm (n, hd), T (n, hd) and q, k, v:
///   dA2 = dO Vm^T, dS2 = A2 (dA2 - rowsum(A2 dA2));  dVm = A2^T dO;  dT = s dS2^T q;
///   dA1 = dVm v^T, dS1 = A1 (dA1 - rowsum(A1 dA1));  dT += s dS1 k;
///   dq = s dS2 T + pool^T(dT);  dk = s dS1^T T;  dv = A1^T dVm + dwc^T(dO);  dTaps += dO (x) v, dBias += sum dO.
/// dO, q and k are first copied into contiguous scratch (their rows lie 3 * dim floats apart) and v transposed
/// (hd, N) for dA1 (in W x W register transposes where the width has them); the products keep a 4-row x 2-vector block in registers, reading either operand's rows or
/// columns (A1, A2, dS1 and dS2 serve as they are stored, no transposed copies). The depthwise conv's input
/// gradient is a gather (the forward's conv with the taps flipped, on a zero-bordered copy of dO), added onto
/// A1^T dVm one grid row at a time on the way to dv; its tap gradients keep nine tap sums and the bias sum in
/// registers per channel vector over a zero-bordered copy of v. <see cref="ReferenceMediatorCore.Backward"/> is
/// the plain twin; the two differ by float rounding only (sums in other orders).
/// </summary>
internal static partial class MediatorCoreKernel
{
    /// <summary>One (image, head) of the mediator core's backward pass, at the widest accelerated vector width.</summary>
    /// <param name="q">this head's queries: token r's hd channels at q[r * xStride ..]; likewise k, v, dq, dk and dv</param>
    /// <param name="k">this head's keys, laid out as q</param>
    /// <param name="v">this head's values, laid out as q</param>
    /// <param name="xStride">floats between consecutive tokens' rows of q, k, v, dq, dk and dv (at least hd)</param>
    /// <param name="taps">depthwise taps of this head's channels: tap t of channel c at taps[t * tapStride + c]</param>
    /// <param name="tapStride">floats between consecutive taps in <paramref name="taps"/> and <paramref name="dTaps"/> (at least hd)</param>
    /// <param name="tokens">the forward's T (n rows, tokenStride apart)</param>
    /// <param name="tokenStride">floats between consecutive rows of T (at least hd)</param>
    /// <param name="a1">the forward's A1 (n, N)</param>
    /// <param name="a2">the forward's A2 (N, n)</param>
    /// <param name="vm">the forward's Vm (n, hd)</param>
    /// <param name="dO">dL/dO (N rows, dOStride apart)</param>
    /// <param name="dOStride">floats between consecutive rows of dO (at least hd)</param>
    /// <param name="dq">dL/dq, overwritten</param>
    /// <param name="dk">dL/dk, overwritten</param>
    /// <param name="dv">dL/dv, overwritten</param>
    /// <param name="dS1">dL/d(logits of A1) (n, N), overwritten (the position biases' gradient sums it over images)</param>
    /// <param name="dS2">dL/d(logits of A2) (N, n), overwritten</param>
    /// <param name="dTaps">tap gradients, added to: tap t of channel c at dTaps[t * tapStride + c]</param>
    /// <param name="dBias">(hd): the depthwise conv's bias gradient, added to</param>
    /// <param name="gridH">token grid height</param>
    /// <param name="gridW">token grid width; N = gridH * gridW</param>
    /// <param name="medGrid">mediator grid side; n = medGrid^2</param>
    /// <param name="headDim">hd, channels per head</param>
    /// <param name="scale">s, the logit scale (1 / sqrt(hd))</param>
    /// <exception cref="ArgumentException">A buffer is too small for the grid, mediators and head size.</exception>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> tokens, int tokenStride,
        ReadOnlySpan<float> a1, ReadOnlySpan<float> a2, ReadOnlySpan<float> vm, ReadOnlySpan<float> dO, int dOStride,
        Span<float> dq, Span<float> dk, Span<float> dv, Span<float> dS1, Span<float> dS2, Span<float> dTaps, Span<float> dBias,
        int gridH, int gridW, int medGrid, int headDim, float scale)
        => Backward(q, k, v, xStride, taps, tapStride, tokens, tokenStride, a1, a2, vm, dO, dOStride, dq, dk, dv, dS1, dS2,
            dTaps, dBias, gridH, gridW, medGrid, headDim, scale, Simd.Widest);

    /// <summary>As above with the vector width chosen by the caller (tests compare the paths).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> tokens, int tokenStride,
        ReadOnlySpan<float> a1, ReadOnlySpan<float> a2, ReadOnlySpan<float> vm, ReadOnlySpan<float> dO, int dOStride,
        Span<float> dq, Span<float> dk, Span<float> dv, Span<float> dS1, Span<float> dS2, Span<float> dTaps, Span<float> dBias,
        int gridH, int gridW, int medGrid, int headDim, float scale, SimdWidth width)
    {
        int N = gridH * gridW, n = medGrid * medGrid, hd = headDim;
        long lastRow = (long)(N - 1) * xStride + hd;
        if (q.Length < lastRow || k.Length < lastRow || v.Length < lastRow || dq.Length < lastRow || dk.Length < lastRow
            || dv.Length < lastRow || xStride < hd || taps.Length < 8L * tapStride + hd || dTaps.Length < 8L * tapStride + hd
            || tapStride < hd || dBias.Length < hd || tokens.Length < (long)(n - 1) * tokenStride + hd || tokenStride < hd
            || a1.Length < n * N || a2.Length < N * n || vm.Length < n * hd || dO.Length < (long)(N - 1) * dOStride + hd
            || dOStride < hd || dS1.Length < n * N || dS2.Length < N * n)
            throw new ArgumentException("mediator core buffers are too small for the grid, mediators and head size.");
        var g = new BackwardGeometry(gridH, gridW, medGrid, hd, xStride, tokenStride, tapStride, dOStride, scale);
        if (width == SimdWidth.W512)
            RunBackward<W512, Vector512<float>>(g, q, k, v, taps, tokens, a1, a2, vm, dO, dq, dk, dv, dS1, dS2, dTaps, dBias, width);
        else if (width == SimdWidth.W256)
            RunBackward<W256, Vector256<float>>(g, q, k, v, taps, tokens, a1, a2, vm, dO, dq, dk, dv, dS1, dS2, dTaps, dBias, width);
        else if (Vector128.IsHardwareAccelerated)
            RunBackward<W128, Vector128<float>>(g, q, k, v, taps, tokens, a1, a2, vm, dO, dq, dk, dv, dS1, dS2, dTaps, dBias, width);
        else
            ReferenceMediatorCore.Backward(q, k, v, xStride, taps, tapStride, tokens, tokenStride, a1, a2, vm, dO, dOStride,
                dq, dk, dv, dS1, dS2, dTaps, dBias, gridH, gridW, medGrid, headDim, scale);
    }

    private readonly record struct BackwardGeometry(int GridH, int GridW, int MedGrid, int Hd, int XStride, int TokenStride,
        int TapStride, int DOStride, float Scale);

    private static void RunBackward<TW, TV>(in BackwardGeometry g, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> taps, ReadOnlySpan<float> tokens, ReadOnlySpan<float> a1, ReadOnlySpan<float> a2, ReadOnlySpan<float> vm,
        ReadOnlySpan<float> dO, Span<float> dq, Span<float> dk, Span<float> dv, Span<float> dS1, Span<float> dS2,
        Span<float> dTaps, Span<float> dBias, SimdWidth width)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, gh = g.GridH, gw = g.GridW, N = gh * gw, mg = g.MedGrid, n = mg * mg, hd = g.Hd, xs = g.XStride;
        int ts = g.TapStride, np = (n + W - 1) / W * W, pw = gw + 2;
        float s = g.Scale;
        // With a whole vector of channels the conv runs as gathers on zero-bordered grids; narrower heads (test-sized
        // models) take the plain conv backward.
        bool gridPath = hd >= W;
        // Scratch, each region on a 64-byte line: dO, q, k copies (N, hd); v^T (hd, N); Vm^T (hd, np); dA2 (N, np);
        // dVm, dT (n, hd); for the grid path the bordered dO and v grids, flipped taps (9, hd), tap sums (10, hd),
        // one grid row of A1^T dVm (gw, hd) and a zero bias (hd).
        int rowsLen = Align16(N * hd), vtLen = Align16(hd * N), vmtLen = Align16(hd * np), dA2Len = Align16(N * np), smallLen = Align16(n * hd);
        int gridLen = Align16((gh + 2) * pw * hd), tapLen = Align16(9 * hd), accLen = Align16(10 * hd), rowLen = Align16(gw * hd), zeroLen = Align16(hd);
        int total = 16 + 3 * rowsLen + vtLen + vmtLen + dA2Len + 2 * smallLen + (gridPath ? 2 * gridLen + tapLen + accLen + rowLen + zeroLen : 0);
        var scratch = ScratchBuffers.Get(3, total);
        ref float dOc = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(scratch), LineOffset(scratch));
        ref float qc = ref Unsafe.Add(ref dOc, rowsLen);
        ref float kc = ref Unsafe.Add(ref qc, rowsLen);
        ref float vT = ref Unsafe.Add(ref kc, rowsLen);
        ref float vmT = ref Unsafe.Add(ref vT, vtLen);
        ref float dA2 = ref Unsafe.Add(ref vmT, vmtLen);
        ref float dVm = ref Unsafe.Add(ref dA2, dA2Len);
        ref float dT = ref Unsafe.Add(ref dVm, smallLen);
        ref float dOgrid = ref Unsafe.Add(ref dT, smallLen);
        ref float vgrid = ref Unsafe.Add(ref dOgrid, gridLen);
        ref float flipped = ref Unsafe.Add(ref vgrid, gridLen);
        ref float tapSums = ref Unsafe.Add(ref flipped, tapLen);
        ref float gridRow = ref Unsafe.Add(ref tapSums, accLen);
        ref float zero = ref Unsafe.Add(ref gridRow, rowLen);

        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float kr = ref MemoryMarshal.GetReference(k);
        ref float vr = ref MemoryMarshal.GetReference(v);
        ref float tr = ref MemoryMarshal.GetReference(tokens);
        ref float p1 = ref MemoryMarshal.GetReference(a1);
        ref float p2 = ref MemoryMarshal.GetReference(a2);
        ref float vmr = ref MemoryMarshal.GetReference(vm);
        ref float ds1 = ref MemoryMarshal.GetReference(dS1);
        ref float ds2 = ref MemoryMarshal.GetReference(dS2);
        ref float dqr = ref MemoryMarshal.GetReference(dq);
        ref float dkr = ref MemoryMarshal.GetReference(dk);
        ref float dvr = ref MemoryMarshal.GetReference(dv);

        Copy<TW, TV>(ref MemoryMarshal.GetReference(dO), g.DOStride, N, hd, ref dOc);
        Copy<TW, TV>(ref qr, xs, N, hd, ref qc);
        Copy<TW, TV>(ref kr, xs, N, hd, ref kc);

        // The query side: dA2 (N, np) = dO Vm^T as the forward's logits product, then the softmax backward row by row into dS2.
        for (int c = 0; c < hd; c++)
        {
            for (int m = 0; m < n; m++) Unsafe.Add(ref vmT, c * np + m) = Unsafe.Add(ref vmr, m * hd + c);
            for (int m = n; m < np; m++) Unsafe.Add(ref vmT, c * np + m) = 0f;
        }
        Logits<TW, TV>(ref dOc, hd, N, ref vmT, hd, np, ref dA2);
        for (int r = 0; r < N; r++)
            SoftmaxGradRow<TW, TV>(ref Unsafe.Add(ref p2, r * n), ref Unsafe.Add(ref dA2, r * np), ref Unsafe.Add(ref ds2, r * n), n);
        // dVm (n, hd) = A2^T dO and dT = s dS2^T q: A2 and dS2 read down their columns.
        Product2<TW, TV>(ref p2, 1, n, n, N, ref dOc, hd, ref dVm, hd, hd, 1f, accumulate: false);
        Product2<TW, TV>(ref ds2, 1, n, n, N, ref qc, hd, ref dT, hd, hd, s, accumulate: false);

        // The key side: dA1 (n, N) = dVm v^T straight into dS1, the softmax backward in place, then dT += s dS1 k.
        TransposeRows<TW, TV>(ref vr, xs, N, hd, ref vT);
        Product2<TW, TV>(ref dVm, hd, 1, n, hd, ref vT, N, ref ds1, N, N, 1f, accumulate: false);
        for (int m = 0; m < n; m++)
        {
            ref float row = ref Unsafe.Add(ref ds1, m * N);
            SoftmaxGradRow<TW, TV>(ref Unsafe.Add(ref p1, m * N), ref row, ref row, N);
        }
        Product2<TW, TV>(ref ds1, N, 1, n, N, ref kc, hd, ref dT, hd, hd, s, accumulate: true);

        // dq = s dS2 T plus the pooling's transpose of dT; dk = s dS1^T T.
        Product2<TW, TV>(ref ds2, n, 1, N, n, ref tr, g.TokenStride, ref dqr, xs, hd, s, accumulate: false);
        PoolBackward<TW, TV>(gh, gw, mg, hd, ref dT, ref dqr, xs);
        Product2<TW, TV>(ref ds1, 1, N, N, n, ref tr, g.TokenStride, ref dkr, xs, hd, s, accumulate: false);

        // dv = A1^T dVm + dwc^T(dO), and the conv's tap and bias gradients.
        if (!gridPath)
        {
            Product2<TW, TV>(ref p1, 1, N, N, n, ref dVm, hd, ref dvr, xs, hd, 1f, accumulate: false);
            DepthwiseConv3x3.BackwardAccumulate(v, xs, taps, ts, dO, g.DOStride, dv, dTaps, dBias, gh, gw, hd, width);
            return;
        }
        ref float tapr = ref MemoryMarshal.GetReference(taps);
        for (int t = 0; t < 9; t++)
            MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref tapr, (8 - t) * ts), hd).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref flipped, t * hd), hd));
        MemoryMarshal.CreateSpan(ref zero, hd).Clear();
        BorderedCopy<TW, TV>(ref dOc, hd, gh, gw, hd, ref dOgrid);
        for (int i = 0; i < gh; i++)
        {
            // A1^T dVm for this grid row into an L1 row buffer; the conv's gather adds onto it on the way to dv.
            Product2<TW, TV>(ref Unsafe.Add(ref p1, i * gw), 1, N, gw, n, ref dVm, hd, ref gridRow, hd, hd, 1f, accumulate: false);
            DepthwiseRow<TW, TV>(ref Unsafe.Add(ref dOgrid, i * pw * hd), pw * hd, gw, hd, ref flipped, hd, ref zero,
                ref gridRow, ref Unsafe.Add(ref dvr, i * gw * xs), xs);
        }
        BorderedCopy<TW, TV>(ref vr, xs, gh, gw, hd, ref vgrid);
        TapSums<TW, TV>(ref dOc, ref vgrid, gh, gw, hd, ref tapSums);
        for (int t = 0; t < 9; t++)
        {
            var dst = dTaps.Slice(t * ts, hd);
            TensorPrimitives.Add(dst, MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref tapSums, t * hd), hd), dst);
        }
        TensorPrimitives.Add(dBias[..hd], MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref tapSums, 9 * hd), hd), dBias[..hd]);
    }

    /// <summary>
    /// dst (cols, rows) = the transpose of src (rows, cols; rows xs apart), with the next block's rows prefetched: in
    /// W x W blocks turned over in registers where the width has a transpose and both sides are whole vectors, else
    /// one element at a time. Either way only moves, so the values are the same.
    /// </summary>
    private static void TransposeRows<TW, TV>(ref float src, int xs, int rows, int cols, ref float dst)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        if (TW.CanTranspose && rows % W == 0 && cols % W == 0)
        {
            for (int r = 0; r < rows; r += W)
            {
                for (int i = r + W; i < Math.Min(r + 2 * W, rows); i++) PrefetchRow(ref Unsafe.Add(ref src, i * xs), cols);
                for (int c = 0; c < cols; c += W)
                    TW.TransposeScaled(ref Unsafe.Add(ref src, r * xs + c), xs, TW.One, ref Unsafe.Add(ref dst, c * rows + r), rows);
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            if (r + 8 < rows) PrefetchRow(ref Unsafe.Add(ref src, (r + 8) * xs), cols);
            ref float row = ref Unsafe.Add(ref src, r * xs);
            for (int c = 0; c < cols; c++) Unsafe.Add(ref dst, c * rows + r) = Unsafe.Add(ref row, c);
        }
    }

    /// <summary>
    /// One softmax-backward row: dst = p (g - sum(p g)) over <paramref name="n"/> floats (dst may be g). The dot runs
    /// in whole vectors, then a scalar tail, as <see cref="SoftmaxRows"/> computes it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxGradRow<TW, TV>(ref float p, ref float grad, ref float dst, int n)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, i = 0;
        float delta = 0f;
        if (n >= W)
        {
            var acc = TW.Zero;
            for (; i + W <= n; i += W) acc = TW.Fma(TW.Load(ref Unsafe.Add(ref p, i)), TW.Load(ref Unsafe.Add(ref grad, i)), acc);
            delta = TW.Sum(acc);
        }
        for (; i < n; i++) delta += Unsafe.Add(ref p, i) * Unsafe.Add(ref grad, i);
        var dv = TW.Splat(delta);
        for (i = 0; i + W <= n; i += W)
            TW.Store(TW.Multiply(TW.Load(ref Unsafe.Add(ref p, i)), TW.Subtract(TW.Load(ref Unsafe.Add(ref grad, i)), dv)), ref Unsafe.Add(ref dst, i));
        for (; i < n; i++) Unsafe.Add(ref dst, i) = Unsafe.Add(ref p, i) * (Unsafe.Add(ref grad, i) - delta);
    }

    /// <summary>
    /// c (rows, cols; rows cs apart) = scale * p x, or c += scale * p x when <paramref name="accumulate"/>, where
    /// p's element (r, l) is p[r * rs + l * ls] (rs = len, ls = 1 for a row-major p; rs = 1, ls = rows' stride to
    /// read a stored matrix down its columns) and x is (len, cols), rows xs apart. Each element's sum runs over l in
    /// order with one FMA per term. The columns go as vectors in groups of two (4 rows at a time) or three (3 rows,
    /// for a head of three vectors such as hd = 24 in 256-bit ones) or one (8 rows), so 8 or 9 FMA chains are in
    /// flight; a column tail shorter than a vector is a vector overlapping the previous one, its already-written
    /// lanes kept as they are.
    /// </summary>
    private static void Product2<TW, TV>(ref float p, int rs, int ls, int rows, int len, ref float x, int xs, ref float c, int cs,
        int cols, float scale, bool accumulate)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        if (cols < W)
        {
            for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                float acc = 0f;
                for (int l = 0; l < len; l++)
                    acc = MathF.FusedMultiplyAdd(Unsafe.Add(ref p, r * rs + l * ls), Unsafe.Add(ref x, l * xs + j), acc);
                ref float dst = ref Unsafe.Add(ref c, r * cs + j);
                dst = accumulate ? dst + scale * acc : scale * acc;
            }
            return;
        }
        var sv = TW.Splat(scale);
        int vectors = (cols + W - 1) / W, overlap = vectors * W - cols;
        // The last vector starts at cols - W; lanes below the overlap were written by the one before it.
        var keep = TW.LanesBelow(overlap);
        for (int j = 0; j < vectors;)
        {
            int take = vectors - j == 3 ? 3 : vectors - j == 1 ? 1 : 2;
            bool lastMasked = overlap > 0 && j + take == vectors;
            int cA = Math.Min(j * W, cols - W), cB = Math.Min((j + 1) * W, cols - W), cC = Math.Min((j + 2) * W, cols - W);
            if (take == 3)
                Block3<TW, TV>(ref p, rs, ls, rows, len, ref x, xs, ref c, cs, cA, cB, cC, sv, accumulate, lastMasked, keep);
            else if (take == 2)
                Block2<TW, TV>(ref p, rs, ls, rows, len, ref x, xs, ref c, cs, cA, cB, sv, accumulate, lastMasked, keep);
            else
                Block1<TW, TV>(ref p, rs, ls, rows, len, ref x, xs, ref c, cs, cA, sv, accumulate, lastMasked, keep);
            j += take;
        }
    }

    /// <summary>Two column vectors of <see cref="Product2{TW, TV}"/> at cA and cB, 4 rows at a time (8 sums in registers).</summary>
    private static void Block2<TW, TV>(ref float p, int rs, int ls, int rows, int len, ref float x, int xs, ref float c, int cs,
        int cA, int cB, TV sv, bool accumulate, bool maskB, TV keep)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int r = 0;
        ref float xa = ref Unsafe.Add(ref x, cA);
        ref float xb = ref Unsafe.Add(ref x, cB);
        for (; r + 4 <= rows; r += 4)
        {
            ref float pa = ref Unsafe.Add(ref p, r * rs);
            ref float pb = ref Unsafe.Add(ref pa, rs);
            ref float pc = ref Unsafe.Add(ref pb, rs);
            ref float pd = ref Unsafe.Add(ref pc, rs);
            TV a0 = TW.Zero, a1 = TW.Zero, b0 = TW.Zero, b1 = TW.Zero, c0 = TW.Zero, c1 = TW.Zero, d0 = TW.Zero, d1 = TW.Zero;
            for (int l = 0; l < len; l++)
            {
                var x0 = TW.Load(ref Unsafe.Add(ref xa, l * xs));
                var x1 = TW.Load(ref Unsafe.Add(ref xb, l * xs));
                int o = l * ls;
                var sp = TW.Splat(Unsafe.Add(ref pa, o));
                a0 = TW.Fma(sp, x0, a0);
                a1 = TW.Fma(sp, x1, a1);
                sp = TW.Splat(Unsafe.Add(ref pb, o));
                b0 = TW.Fma(sp, x0, b0);
                b1 = TW.Fma(sp, x1, b1);
                sp = TW.Splat(Unsafe.Add(ref pc, o));
                c0 = TW.Fma(sp, x0, c0);
                c1 = TW.Fma(sp, x1, c1);
                sp = TW.Splat(Unsafe.Add(ref pd, o));
                d0 = TW.Fma(sp, x0, d0);
                d1 = TW.Fma(sp, x1, d1);
            }
            ref float cr = ref Unsafe.Add(ref c, r * cs);
            Put<TW, TV>(a0, ref Unsafe.Add(ref cr, cA), sv, accumulate, false, keep);
            Put<TW, TV>(a1, ref Unsafe.Add(ref cr, cB), sv, accumulate, maskB, keep);
            Put<TW, TV>(b0, ref Unsafe.Add(ref cr, cs + cA), sv, accumulate, false, keep);
            Put<TW, TV>(b1, ref Unsafe.Add(ref cr, cs + cB), sv, accumulate, maskB, keep);
            Put<TW, TV>(c0, ref Unsafe.Add(ref cr, 2 * cs + cA), sv, accumulate, false, keep);
            Put<TW, TV>(c1, ref Unsafe.Add(ref cr, 2 * cs + cB), sv, accumulate, maskB, keep);
            Put<TW, TV>(d0, ref Unsafe.Add(ref cr, 3 * cs + cA), sv, accumulate, false, keep);
            Put<TW, TV>(d1, ref Unsafe.Add(ref cr, 3 * cs + cB), sv, accumulate, maskB, keep);
        }
        for (; r < rows; r++)
        {
            ref float pa = ref Unsafe.Add(ref p, r * rs);
            TV a0 = TW.Zero, a1 = TW.Zero;
            for (int l = 0; l < len; l++)
            {
                var sp = TW.Splat(Unsafe.Add(ref pa, l * ls));
                a0 = TW.Fma(sp, TW.Load(ref Unsafe.Add(ref xa, l * xs)), a0);
                a1 = TW.Fma(sp, TW.Load(ref Unsafe.Add(ref xb, l * xs)), a1);
            }
            ref float cr = ref Unsafe.Add(ref c, r * cs);
            Put<TW, TV>(a0, ref Unsafe.Add(ref cr, cA), sv, accumulate, false, keep);
            Put<TW, TV>(a1, ref Unsafe.Add(ref cr, cB), sv, accumulate, maskB, keep);
        }
    }

    /// <summary>Three column vectors of <see cref="Product2{TW, TV}"/> at cA, cB and cC, 3 rows at a time (9 sums in registers).</summary>
    private static void Block3<TW, TV>(ref float p, int rs, int ls, int rows, int len, ref float x, int xs, ref float c, int cs,
        int cA, int cB, int cC, TV sv, bool accumulate, bool maskC, TV keep)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int r = 0;
        ref float xa = ref Unsafe.Add(ref x, cA);
        ref float xb = ref Unsafe.Add(ref x, cB);
        ref float xc = ref Unsafe.Add(ref x, cC);
        for (; r + 3 <= rows; r += 3)
        {
            ref float pa = ref Unsafe.Add(ref p, r * rs);
            ref float pb = ref Unsafe.Add(ref pa, rs);
            ref float pc = ref Unsafe.Add(ref pb, rs);
            TV a0 = TW.Zero, a1 = TW.Zero, a2 = TW.Zero, b0 = TW.Zero, b1 = TW.Zero, b2 = TW.Zero, c0 = TW.Zero, c1 = TW.Zero, c2 = TW.Zero;
            for (int l = 0; l < len; l++)
            {
                var x0 = TW.Load(ref Unsafe.Add(ref xa, l * xs));
                var x1 = TW.Load(ref Unsafe.Add(ref xb, l * xs));
                var x2 = TW.Load(ref Unsafe.Add(ref xc, l * xs));
                int o = l * ls;
                var sp = TW.Splat(Unsafe.Add(ref pa, o));
                a0 = TW.Fma(sp, x0, a0);
                a1 = TW.Fma(sp, x1, a1);
                a2 = TW.Fma(sp, x2, a2);
                sp = TW.Splat(Unsafe.Add(ref pb, o));
                b0 = TW.Fma(sp, x0, b0);
                b1 = TW.Fma(sp, x1, b1);
                b2 = TW.Fma(sp, x2, b2);
                sp = TW.Splat(Unsafe.Add(ref pc, o));
                c0 = TW.Fma(sp, x0, c0);
                c1 = TW.Fma(sp, x1, c1);
                c2 = TW.Fma(sp, x2, c2);
            }
            ref float cr = ref Unsafe.Add(ref c, r * cs);
            Put<TW, TV>(a0, ref Unsafe.Add(ref cr, cA), sv, accumulate, false, keep);
            Put<TW, TV>(a1, ref Unsafe.Add(ref cr, cB), sv, accumulate, false, keep);
            Put<TW, TV>(a2, ref Unsafe.Add(ref cr, cC), sv, accumulate, maskC, keep);
            Put<TW, TV>(b0, ref Unsafe.Add(ref cr, cs + cA), sv, accumulate, false, keep);
            Put<TW, TV>(b1, ref Unsafe.Add(ref cr, cs + cB), sv, accumulate, false, keep);
            Put<TW, TV>(b2, ref Unsafe.Add(ref cr, cs + cC), sv, accumulate, maskC, keep);
            Put<TW, TV>(c0, ref Unsafe.Add(ref cr, 2 * cs + cA), sv, accumulate, false, keep);
            Put<TW, TV>(c1, ref Unsafe.Add(ref cr, 2 * cs + cB), sv, accumulate, false, keep);
            Put<TW, TV>(c2, ref Unsafe.Add(ref cr, 2 * cs + cC), sv, accumulate, maskC, keep);
        }
        for (; r < rows; r++)
        {
            ref float pa = ref Unsafe.Add(ref p, r * rs);
            TV a0 = TW.Zero, a1 = TW.Zero, a2 = TW.Zero;
            for (int l = 0; l < len; l++)
            {
                var sp = TW.Splat(Unsafe.Add(ref pa, l * ls));
                a0 = TW.Fma(sp, TW.Load(ref Unsafe.Add(ref xa, l * xs)), a0);
                a1 = TW.Fma(sp, TW.Load(ref Unsafe.Add(ref xb, l * xs)), a1);
                a2 = TW.Fma(sp, TW.Load(ref Unsafe.Add(ref xc, l * xs)), a2);
            }
            ref float cr = ref Unsafe.Add(ref c, r * cs);
            Put<TW, TV>(a0, ref Unsafe.Add(ref cr, cA), sv, accumulate, false, keep);
            Put<TW, TV>(a1, ref Unsafe.Add(ref cr, cB), sv, accumulate, false, keep);
            Put<TW, TV>(a2, ref Unsafe.Add(ref cr, cC), sv, accumulate, maskC, keep);
        }
    }

    /// <summary>One column vector of <see cref="Product2{TW, TV}"/> at cA, 8 rows at a time (8 sums in registers).</summary>
    private static void Block1<TW, TV>(ref float p, int rs, int ls, int rows, int len, ref float x, int xs, ref float c, int cs,
        int cA, TV sv, bool accumulate, bool masked, TV keep)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int r = 0;
        ref float xa = ref Unsafe.Add(ref x, cA);
        for (; r + 8 <= rows; r += 8)
        {
            ref float p0 = ref Unsafe.Add(ref p, r * rs);
            TV s0 = TW.Zero, s1 = TW.Zero, s2 = TW.Zero, s3 = TW.Zero, s4 = TW.Zero, s5 = TW.Zero, s6 = TW.Zero, s7 = TW.Zero;
            for (int l = 0; l < len; l++)
            {
                var x0 = TW.Load(ref Unsafe.Add(ref xa, l * xs));
                ref float pl = ref Unsafe.Add(ref p0, l * ls);
                s0 = TW.Fma(TW.Splat(pl), x0, s0);
                s1 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, rs)), x0, s1);
                s2 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 2 * rs)), x0, s2);
                s3 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 3 * rs)), x0, s3);
                s4 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 4 * rs)), x0, s4);
                s5 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 5 * rs)), x0, s5);
                s6 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 6 * rs)), x0, s6);
                s7 = TW.Fma(TW.Splat(Unsafe.Add(ref pl, 7 * rs)), x0, s7);
            }
            ref float cr = ref Unsafe.Add(ref c, r * cs + cA);
            Put<TW, TV>(s0, ref cr, sv, accumulate, masked, keep);
            Put<TW, TV>(s1, ref Unsafe.Add(ref cr, cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s2, ref Unsafe.Add(ref cr, 2 * cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s3, ref Unsafe.Add(ref cr, 3 * cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s4, ref Unsafe.Add(ref cr, 4 * cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s5, ref Unsafe.Add(ref cr, 5 * cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s6, ref Unsafe.Add(ref cr, 6 * cs), sv, accumulate, masked, keep);
            Put<TW, TV>(s7, ref Unsafe.Add(ref cr, 7 * cs), sv, accumulate, masked, keep);
        }
        for (; r < rows; r++)
        {
            ref float pa = ref Unsafe.Add(ref p, r * rs);
            var a0 = TW.Zero;
            for (int l = 0; l < len; l++)
                a0 = TW.Fma(TW.Splat(Unsafe.Add(ref pa, l * ls)), TW.Load(ref Unsafe.Add(ref xa, l * xs)), a0);
            Put<TW, TV>(a0, ref Unsafe.Add(ref c, r * cs + cA), sv, accumulate, masked, keep);
        }
    }

    /// <summary>dst = scale * acc, or dst += scale * acc; with <paramref name="masked"/>, lanes set in <paramref name="keep"/> stay as they are.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TW, TV>(TV acc, ref float dst, TV sv, bool accumulate, bool masked, TV keep)
        where TW : struct, ISimd<TV> where TV : struct
    {
        var value = TW.Multiply(acc, sv);
        if (!accumulate && !masked)
        {
            TW.Store(value, ref dst);
            return;
        }
        var old = TW.Load(ref dst);
        if (accumulate) value = TW.Add(old, value);
        if (masked) value = TW.Select(keep, old, value);
        TW.Store(value, ref dst);
    }

    /// <summary>dq rows += the adaptive pooling's transpose of dT (n, hd): each token gets 1 / |bin| of each bin it lies in.</summary>
    private static void PoolBackward<TW, TV>(int gh, int gw, int mg, int hd, ref float dT, ref float dq, int xs)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count;
        for (int bi = 0; bi < mg; bi++)
        {
            var (h0, h1) = AdaptiveAvgPool.Bin(bi, gh, mg);
            for (int bj = 0; bj < mg; bj++)
            {
                var (w0, w1) = AdaptiveAvgPool.Bin(bj, gw, mg);
                float inv = 1f / ((h1 - h0) * (w1 - w0));
                var vinv = TW.Splat(inv);
                ref float src = ref Unsafe.Add(ref dT, (bi * mg + bj) * hd);
                for (int a = h0; a < h1; a++)
                for (int b = w0; b < w1; b++)
                {
                    ref float dst = ref Unsafe.Add(ref dq, (a * gw + b) * xs);
                    int c = 0;
                    for (; c + W <= hd; c += W)
                        TW.Store(TW.Add(TW.Multiply(TW.Load(ref Unsafe.Add(ref src, c)), vinv), TW.Load(ref Unsafe.Add(ref dst, c))), ref Unsafe.Add(ref dst, c));
                    for (; c < hd; c++) Unsafe.Add(ref dst, c) += Unsafe.Add(ref src, c) * inv;
                }
            }
        }
    }

    /// <summary>
    /// sums (10, hd): row t &lt; 9 = sum over tokens p of dO[p] * v[p + offset of tap t] (v zero outside the grid, from
    /// the bordered grid), row 9 = sum of dO[p]; tokens in row-major order, one FMA per term. One channel vector at a
    /// time with the ten sums in registers; a column tail overlapping the previous vector recomputes the same values.
    /// </summary>
    private static void TapSums<TW, TV>(ref float dO, ref float vgrid, int gh, int gw, int hd, ref float sums)
        where TW : struct, ISimd<TV> where TV : struct
    {
        int W = TW.Count, pw = gw + 2, rowStep = pw * hd;
        for (int col = 0; col < hd; col += W)
        {
            int c0 = Math.Min(col, hd - W);
            TV s0 = TW.Zero, s1 = TW.Zero, s2 = TW.Zero, s3 = TW.Zero, s4 = TW.Zero, s5 = TW.Zero, s6 = TW.Zero, s7 = TW.Zero,
                s8 = TW.Zero, sb = TW.Zero;
            for (int i = 0; i < gh; i++)
            {
                ref float up = ref Unsafe.Add(ref vgrid, i * rowStep + c0);
                ref float gi = ref Unsafe.Add(ref dO, i * gw * hd + c0);
                for (int j = 0; j < gw; j++)
                {
                    var gv = TW.Load(ref Unsafe.Add(ref gi, j * hd));
                    ref float xu = ref Unsafe.Add(ref up, j * hd);
                    ref float xm = ref Unsafe.Add(ref xu, rowStep);
                    ref float xd = ref Unsafe.Add(ref xm, rowStep);
                    sb = TW.Add(sb, gv);
                    s0 = TW.Fma(gv, TW.Load(ref xu), s0);
                    s1 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xu, hd)), s1);
                    s2 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xu, 2 * hd)), s2);
                    s3 = TW.Fma(gv, TW.Load(ref xm), s3);
                    s4 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xm, hd)), s4);
                    s5 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xm, 2 * hd)), s5);
                    s6 = TW.Fma(gv, TW.Load(ref xd), s6);
                    s7 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xd, hd)), s7);
                    s8 = TW.Fma(gv, TW.Load(ref Unsafe.Add(ref xd, 2 * hd)), s8);
                }
            }
            ref float dst = ref Unsafe.Add(ref sums, c0);
            TW.Store(s0, ref dst);
            TW.Store(s1, ref Unsafe.Add(ref dst, hd));
            TW.Store(s2, ref Unsafe.Add(ref dst, 2 * hd));
            TW.Store(s3, ref Unsafe.Add(ref dst, 3 * hd));
            TW.Store(s4, ref Unsafe.Add(ref dst, 4 * hd));
            TW.Store(s5, ref Unsafe.Add(ref dst, 5 * hd));
            TW.Store(s6, ref Unsafe.Add(ref dst, 6 * hd));
            TW.Store(s7, ref Unsafe.Add(ref dst, 7 * hd));
            TW.Store(s8, ref Unsafe.Add(ref dst, 8 * hd));
            TW.Store(sb, ref Unsafe.Add(ref dst, 9 * hd));
        }
    }
}

internal static partial class ReferenceMediatorCore
{
    /// <summary>
    /// The plain form of <see cref="MediatorCoreKernel.Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, int, int, int, int, float)"/>
    /// (same arguments, same results up to float rounding): the depthwise conv's backward, eight
    /// <see cref="Gemm.Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
    /// products, one <see cref="SoftmaxRows.Backward(ReadOnlySpan{float}, Span{float}, float)"/> call per row and the
    /// pooling's transpose, in order.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int xStride,
        ReadOnlySpan<float> taps, int tapStride, ReadOnlySpan<float> tokens, int tokenStride,
        ReadOnlySpan<float> a1, ReadOnlySpan<float> a2, ReadOnlySpan<float> vm, ReadOnlySpan<float> dO, int dOStride,
        Span<float> dq, Span<float> dk, Span<float> dv, Span<float> dS1, Span<float> dS2, Span<float> dTaps, Span<float> dBias,
        int gridH, int gridW, int medGrid, int headDim, float scale)
    {
        int N = gridH * gridW, n = medGrid * medGrid, hd = headDim;
        var dVm = new float[n * hd];
        var dT = new float[n * hd];
        for (int r = 0; r < N; r++) dv.Slice(r * xStride, hd).Clear();
        DepthwiseConv3x3.BackwardAccumulate(v, xStride, taps, tapStride, dO, dOStride, dv, dTaps, dBias, gridH, gridW, hd);
        // dA2 = dO Vm^T and dVm = A2^T dO; the softmax turns dA2 into dS2 (N, n) in place.
        Gemm.Sgemm(false, true, N, n, hd, 1f, dO, dOStride, vm, hd, 0f, dS2, n);
        Gemm.Sgemm(true, false, n, hd, N, 1f, a2, n, dO, dOStride, 0f, dVm, hd);
        for (int r = 0; r < N; r++) SoftmaxRows.Backward(a2.Slice(r * n, n), dS2.Slice(r * n, n));
        // dq = s dS2 T ; dT = s dS2^T q.
        Gemm.Sgemm(false, false, N, hd, n, scale, dS2, n, tokens, tokenStride, 0f, dq, xStride);
        Gemm.Sgemm(true, false, n, hd, N, scale, dS2, n, q, xStride, 0f, dT, hd);
        // dA1 = dVm v^T and dv += A1^T dVm; the softmax turns dA1 into dS1 (n, N).
        Gemm.Sgemm(false, true, n, N, hd, 1f, dVm, hd, v, xStride, 0f, dS1, N);
        Gemm.Sgemm(true, false, N, hd, n, 1f, a1, N, dVm, hd, 1f, dv, xStride);
        for (int m = 0; m < n; m++) SoftmaxRows.Backward(a1.Slice(m * N, N), dS1.Slice(m * N, N));
        // dT += s dS1 k ; dk = s dS1^T T.
        Gemm.Sgemm(false, false, n, hd, N, scale, dS1, N, k, xStride, 1f, dT, hd);
        Gemm.Sgemm(true, false, N, hd, n, scale, dS1, N, tokens, tokenStride, 0f, dk, xStride);
        // The mediator tokens are a pooling of q: spread dT back over each bin.
        AdaptiveAvgPool.BackwardAccumulate(dT, hd, dq, xStride, gridH, gridW, hd, medGrid, medGrid);
    }
}
