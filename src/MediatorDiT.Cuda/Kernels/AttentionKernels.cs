using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The attention of the blocks, over the CPU backend's buffers: qkv (B*N, 3D) with columns [q | k | v], heads of hd
/// channels side by side; outputs (B*N, D). Full attention is one flash-style kernel; mediator attention is the CPU's
/// MediatorCoreKernel split into its steps (pool, key logits, key softmax, gather, query logits, query softmax,
/// read back, depthwise conv), each writing the tensor the CPU saves (T, A1, Vm, A2, O) in its layout.
/// </summary>
internal static class AttentionKernels
{
    /// <summary>The widest head the full-attention kernels take: each thread keeps its rows in local arrays of this size.</summary>
    public const int MaxHeadDim = 128;

    /// <summary>
    /// Full attention for one (image, head, query row): O = softmax(s q k^T) v over all N keys with an online softmax,
    /// so no N x N matrix is stored: a running maximum m, sum l and output row are rescaled by exp(m_old - m_new)
    /// whenever a larger logit comes. lse (B, H, N) gets m + log(l), the row's log-sum-exp that Models.FullAttention
    /// saves for its backward. Thread i = (b H + h) N + r. The query row and the output accumulator live in the thread's
    /// local memory (interleaved across a warp, so the same channel of neighbouring threads is one transaction), not in
    /// O's global row, which neighbouring threads would touch 3D floats apart on every key; the key and value rows are
    /// the same for a warp's threads (one image and head). The sums run in the same order as before, to the same bits.
    /// </summary>
    public static void FlashAttention(Index1D i, ArrayView<float> qkv, ArrayView<float> o, ArrayView<float> lse, AttentionGeometry g)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int bh = i / n, r = i % n, b = bh / g.Heads, h = bh % g.Heads;
        long q = ((long)b * n + r) * 3 * d + h * hd, kv0 = (long)b * n * 3 * d + h * hd;
        long oo = ((long)b * n + r) * d + h * hd;
        var qRow = LocalMemory.Allocate<float>(MaxHeadDim);
        var acc = LocalMemory.Allocate<float>(MaxHeadDim);
        for (int c = 0; c < hd; c++)
        {
            qRow[c] = qkv[q + c];
            acc[c] = 0f;
        }
        float max = float.NegativeInfinity, sum = 0f;
        for (int j = 0; j < n; j++)
        {
            long k = kv0 + (long)j * 3 * d + d;
            float dot = 0f;
            for (int c = 0; c < hd; c++) dot = MathF.FusedMultiplyAdd(qRow[c], qkv[k + c], dot);
            float s = dot * g.Scale;
            if (s > max)
            {
                float correction = DeviceMath.Exp(max - s); // 0 for the first key (max = -inf)
                sum *= correction;
                for (int c = 0; c < hd; c++) acc[c] *= correction;
                max = s;
            }
            float p = DeviceMath.Exp(s - max);
            sum += p;
            for (int c = 0; c < hd; c++) acc[c] = MathF.FusedMultiplyAdd(p, qkv[k + d + c], acc[c]);
        }
        float inv = 1f / sum;
        for (int c = 0; c < hd; c++) o[oo + c] = acc[c] * inv;
        lse[i] = max + DeviceMath.Log(sum);
    }

    /// <summary>
    /// Mediator tokens T (B, n, D) = nn.AdaptiveAvgPool2d of q over the G x G grid to g x g, as Nn.AdaptiveAvgPool.Forward:
    /// bin rows floor(i G / g) .. ceil((i + 1) G / g) - 1 (likewise columns), summed in grid order, times 1 / count.
    /// q is qkv's plus qkvBias (3D) when that is not empty, added to each value as it is read. Thread i = (b n + m) D + c.
    /// </summary>
    public static void MediatorPool(Index1D i, ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> tokens, AttentionGeometry g)
    {
        int d = g.Dim, c = i % d, rest = i / d, m = rest % g.Mediators, b = rest / g.Mediators;
        int mi = m / g.MedGrid, mj = m % g.MedGrid;
        int h0 = mi * g.Grid / g.MedGrid, h1 = ((mi + 1) * g.Grid + g.MedGrid - 1) / g.MedGrid;
        int w0 = mj * g.Grid / g.MedGrid, w1 = ((mj + 1) * g.Grid + g.MedGrid - 1) / g.MedGrid;
        float sum = 0f;
        for (int a = h0; a < h1; a++)
        for (int bb = w0; bb < w1; bb++)
            sum += QkvValue(qkv, qkvBias, ((long)b * g.Tokens + a * g.Grid + bb) * 3 * d, c);
        tokens[i] = sum * (1f / ((h1 - h0) * (w1 - w0)));
    }

    /// <summary>qkv's value in column <paramref name="column"/> of the row at <paramref name="row"/>, plus the column's bias when there is one.</summary>
    public static float QkvValue(ArrayView<float> qkv, ArrayView<float> qkvBias, long row, int column) =>
        qkvBias.Length > 0 ? qkv[row + column] + qkvBias[column] : qkv[row + column];

    /// <summary>
    /// The mediators' key logits A1 (B, H, n, N) = s T k^T per head (softmaxed in place next). Thread i = ((b H + h) n + m) N + j.
    /// </summary>
    public static void MediatorKeyLogits(Index1D i, ArrayView<float> qkv, ArrayView<float> tokens, ArrayView<float> a1, AttentionGeometry g)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int j = i % n, rest = i / n, m = rest % g.Mediators, bh = rest / g.Mediators, b = bh / g.Heads, h = bh % g.Heads;
        long t = ((long)b * g.Mediators + m) * d + h * hd, k = ((long)b * n + j) * 3 * d + d + h * hd;
        float dot = 0f;
        for (int c = 0; c < hd; c++) dot = MathF.FusedMultiplyAdd(tokens[t + c], qkv[k + c], dot);
        a1[i] = dot * g.Scale;
    }

    /// <summary>The mediators' values Vm (B, H, n, hd) = A1 v per head. Thread i = ((b H + h) n + m) hd + c.</summary>
    public static void MediatorGather(Index1D i, ArrayView<float> a1, ArrayView<float> qkv, ArrayView<float> vm, AttentionGeometry g)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int c = i % hd, rest = i / hd, m = rest % g.Mediators, bh = rest / g.Mediators, b = bh / g.Heads, h = bh % g.Heads;
        long row = ((long)bh * g.Mediators + m) * n, v = (long)b * n * 3 * d + 2 * d + h * hd + c;
        float sum = 0f;
        for (int j = 0; j < n; j++) sum = MathF.FusedMultiplyAdd(a1[row + j], qkv[v + (long)j * 3 * d], sum);
        vm[i] = sum;
    }

    /// <summary>The queries' mediator logits A2 (B, H, N, n) = s q T^T per head. Thread i = ((b H + h) N + r) n + m.</summary>
    public static void MediatorQueryLogits(Index1D i, ArrayView<float> qkv, ArrayView<float> tokens, ArrayView<float> a2, AttentionGeometry g)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int m = i % g.Mediators, rest = i / g.Mediators, r = rest % n, bh = rest / n, b = bh / g.Heads, h = bh % g.Heads;
        long q = ((long)b * n + r) * 3 * d + h * hd, t = ((long)b * g.Mediators + m) * d + h * hd;
        float dot = 0f;
        for (int c = 0; c < hd; c++) dot = MathF.FusedMultiplyAdd(qkv[q + c], tokens[t + c], dot);
        a2[i] = dot * g.Scale;
    }

    /// <summary>O (B*N, D) = A2 Vm per head: the queries read the mediators back. Thread i = (b N + r) D + channel.</summary>
    public static void MediatorReadBack(Index1D i, ArrayView<float> a2, ArrayView<float> vm, ArrayView<float> o, AttentionGeometry g)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int ch = i % d, rest = i / d, r = rest % n, b = rest / n, h = ch / hd, c = ch % hd;
        long bh = (long)b * g.Heads + h, row = (bh * n + r) * g.Mediators, col = bh * g.Mediators * hd + c;
        float sum = 0f;
        for (int m = 0; m < g.Mediators; m++) sum = MathF.FusedMultiplyAdd(a2[row + m], vm[col + (long)m * hd], sum);
        o[i] = sum;
    }

    /// <summary>
    /// O += dwc(v) as Nn.DepthwiseConv3x3.Forward with accumulate: per element, O + bias, then the in-grid taps in row-then-
    /// column order as fused multiply-adds; weight (D, 1, 3, 3) as PyTorch stores it; v is qkv's plus qkvBias (3D) when
    /// that is not empty (the padding stays zero). Thread i = (b N + token) D + channel.
    /// </summary>
    public static void DepthwiseConvAdd(Index1D i, ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> weight, ArrayView<float> bias,
        ArrayView<float> o, AttentionGeometry g)
    {
        int ch = i % g.Dim;
        o[i] = AddConvTaps(qkv, qkvBias, weight, g, i, o[i] + bias[ch]);
    }

    /// <summary>
    /// <see cref="DepthwiseConvAdd"/> over the head-major core output instead of its rows, fused with the move back:
    /// o (B*N, D) = oh (B, H, N, hd) moved to rows, + bias, + the taps in the same order, so the bits of
    /// <see cref="AttentionTileKernels.FromHeadMajor"/> then DepthwiseConvAdd; when o16 is not empty it also gets each
    /// value's bf16 (proj's operand), and then o itself only when <paramref name="floats"/> is 1 (a sampling forward's
    /// proj reads o16 alone). Thread i = (b N + token) D + channel.
    /// </summary>
    public static void DepthwiseConvAddFromHeads(Index1D i, ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> weight, ArrayView<float> bias,
        ArrayView<float> oh, ArrayView<float> o, ArrayView<ushort> o16, AttentionGeometry g, int floats)
    {
        int n = g.Tokens, d = g.Dim, hd = g.HeadDim;
        int ch = i % d, rest = i / d, token = rest % n, b = rest / n, h = ch / hd;
        float acc = AddConvTaps(qkv, qkvBias, weight, g, i, oh[(((long)b * g.Heads + h) * n + token) * hd + ch - h * hd] + bias[ch]);
        if (floats != 0) o[i] = acc;
        if (o16.Length > 0) o16[i] = Bf16.Round(acc);
    }

    /// <summary>
    /// acc plus the depthwise conv's in-grid taps of v for element i = (b N + token) D + channel, in row-then-column
    /// order as fused multiply-adds (Nn.DepthwiseConv3x3's order; the padding is zero).
    /// </summary>
    private static float AddConvTaps(ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> weight, AttentionGeometry g, int i, float acc)
    {
        int n = g.Tokens, d = g.Dim, side = g.Grid;
        int ch = i % d, rest = i / d, token = rest % n, b = rest / n, ti = token / side, tj = token % side;
        for (int di = -1; di <= 1; di++)
        {
            int a = ti + di;
            if (a < 0 || a >= side) continue;
            for (int dj = -1; dj <= 1; dj++)
            {
                int c = tj + dj;
                if (c < 0 || c >= side) continue;
                float v = QkvValue(qkv, qkvBias, ((long)b * n + a * side + c) * 3 * d, 2 * d + ch);
                acc = MathF.FusedMultiplyAdd(v, weight[ch * 9 + (di + 1) * 3 + dj + 1], acc);
            }
        }
        return acc;
    }

    /// <summary>
    /// Row softmax in place with a bias row per logit row, as Nn.SoftmaxRows.Forward: rows (count, n), row r gets bias
    /// row r mod biasRows of the table (biasRows, n) (mediator attention's bias1 (H, n, N) over A1's rows, bias2
    /// (H, N, n) over A2's): add, subtract the maximum, exponentiate (FastExp's bits), scale by 1 / sum.
    /// </summary>
    public static void SoftmaxRowsWithBiasTable(Index1D row, ArrayView<float> x, ArrayView<float> bias, int n, int biasRows)
    {
        int r = row;
        RowKernels.SoftmaxRowInPlace(x, (long)r * n, n, bias, (long)(r % biasRows) * n, addBias: true);
    }
}

/// <summary>
/// One attention layer's sizes: B images of N = Grid^2 tokens, H heads of HeadDim channels (Dim = H HeadDim), logit
/// scale 1 / sqrt(HeadDim), and for mediator attention n = MedGrid^2 mediators.
/// </summary>
internal readonly record struct AttentionGeometry(int Batch, int Grid, int Heads, int HeadDim, int MedGrid, float Scale)
{
    public int Tokens => Grid * Grid;
    public int Dim => Heads * HeadDim;
    public int Mediators => MedGrid * MedGrid;
}
