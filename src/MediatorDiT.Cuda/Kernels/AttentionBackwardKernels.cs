using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The backward passes of full and mediator attention's cores, on the CPU layers' saved activations in their
/// row-major layouts (Models/Attention/Full, Models/Attention/Mediator): qkv (B*N, 3D) with columns [q | k | v] and
/// head h's channels at h * hd within each, per-head outputs and their gradient (B*N, D). A first mapping, like
/// <see cref="RowKernels"/>: one thread per output row or element, each sum running in order over its terms, no
/// atomics, so every result is deterministic; shared-memory tiles come with the device run (docs/GPU.md). The sums
/// run in another order than the CPU's vector code, so they agree with it to rounding.
/// </summary>
internal static class AttentionBackwardKernels
{
    /// <summary>
    /// Full attention, per (b, h, query i) (thread index (b H + h) N + i, the layout of lse and delta (B, H, N)):
    /// delta = rowsum(dO * O) over head h's channels, what the softmax backward subtracts.
    /// </summary>
    public static void FullAttentionDelta(Index1D index, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> delta,
        int tokens, int heads, int headDim)
    {
        int i = index % tokens, bh = index / tokens, b = bh / heads, h = bh - b * heads;
        long row = ((long)b * tokens + i) * heads * headDim + h * headDim;
        float sum = 0;
        for (int c = 0; c < headDim; c++) sum += dO[row + c] * o[row + c];
        delta[index] = sum;
    }

    /// <summary>
    /// Full attention's dq, one thread per (b, h, query i), flash style: for each key j the probability is recomputed
    /// as p = exp(s q_i.k_j - lse_i) from the forward's log-sum-exp (never an N x N matrix), then
    /// dS = p (dO_i.v_j - delta_i) and dq_i = s sum_j dS k_j. The thread's q_i, dO_i and dq_i rows live in its local
    /// memory (see AttentionKernels.FlashAttention: neighbouring threads' global rows are 3D floats apart), dq_i is
    /// written once at the end; the sums run in the same order as in global memory, to the same bits.
    /// </summary>
    public static void FullAttentionQueryGradient(Index1D index, ArrayView<float> qkv, ArrayView<float> dO, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dqkv, int tokens, int heads, int headDim, float scale)
    {
        int i = index % tokens, bh = index / tokens, b = bh / heads, h = bh - b * heads;
        int d = heads * headDim, hd = headDim;
        long imageRow = (long)b * tokens;
        long q = (imageRow + i) * 3 * d + h * hd, g = (imageRow + i) * d + h * hd;
        float l = lse[index], dl = delta[index];
        var qRow = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        var gRow = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        var dq = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        for (int c = 0; c < hd; c++)
        {
            qRow[c] = qkv[q + c];
            gRow[c] = dO[g + c];
            dq[c] = 0;
        }
        for (int j = 0; j < tokens; j++)
        {
            long k = (imageRow + j) * 3 * d + d + h * hd, v = k + d;
            float s = 0, dp = 0;
            for (int c = 0; c < hd; c++)
            {
                s += qRow[c] * qkv[k + c];
                dp += gRow[c] * qkv[v + c];
            }
            float p = DeviceMath.Exp(scale * s - l);
            float ds = scale * (p * (dp - dl));
            for (int c = 0; c < hd; c++) dq[c] += ds * qkv[k + c];
        }
        for (int c = 0; c < hd; c++) dqkv[q + c] = dq[c];
    }

    /// <summary>
    /// Full attention's dk and dv, one thread per (b, h, key j), over the queries i in order with the probabilities
    /// recomputed as in <see cref="FullAttentionQueryGradient"/> (the same dot products, so the same p):
    /// dv_j = sum_i p dO_i, dk_j = s sum_i dS q_i; k_j, v_j and both accumulators in the thread's local memory.
    /// </summary>
    public static void FullAttentionKeyValueGradient(Index1D index, ArrayView<float> qkv, ArrayView<float> dO, ArrayView<float> lse,
        ArrayView<float> delta, ArrayView<float> dqkv, int tokens, int heads, int headDim, float scale)
    {
        int j = index % tokens, bh = index / tokens, b = bh / heads, h = bh - b * heads;
        int d = heads * headDim, hd = headDim;
        long imageRow = (long)b * tokens;
        long k = (imageRow + j) * 3 * d + d + h * hd, v = k + d;
        var kRow = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        var vRow = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        var dk = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        var dv = LocalMemory.Allocate<float>(AttentionKernels.MaxHeadDim);
        for (int c = 0; c < hd; c++)
        {
            kRow[c] = qkv[k + c];
            vRow[c] = qkv[v + c];
            dk[c] = 0;
            dv[c] = 0;
        }
        for (int i = 0; i < tokens; i++)
        {
            long q = (imageRow + i) * 3 * d + h * hd, g = (imageRow + i) * d + h * hd;
            float s = 0, dp = 0;
            for (int c = 0; c < hd; c++)
            {
                s += qkv[q + c] * kRow[c];
                dp += dO[g + c] * vRow[c];
            }
            int row = bh * tokens + i;
            float p = DeviceMath.Exp(scale * s - lse[row]);
            float ds = scale * (p * (dp - delta[row]));
            for (int c = 0; c < hd; c++)
            {
                dv[c] += p * dO[g + c];
                dk[c] += ds * qkv[q + c];
            }
        }
        for (int c = 0; c < hd; c++)
        {
            dqkv[k + c] = dk[c];
            dqkv[v + c] = dv[c];
        }
    }

    // Mediator attention, as Nn.ReferenceMediatorCore.Backward per (image b, head h); layouts as MediatorAttention saves
    // them: T (B, n, D), A1 (B, H, n, N), A2 (B, H, N, n), Vm and the scratch dVm, dT (B, H, n, hd), dS1 (B, H, n, N),
    // dS2 (B, H, N, n), taps (9, D).

    /// <summary>Per (b, h, token r): dA2 = dO_r Vm^T (n), then dS2 = A2 (dA2 - sum(A2 dA2)) in its row of dS2.</summary>
    public static void MediatorQuerySoftmaxBackward(Index1D index, ArrayView<float> dO, ArrayView<float> vm, ArrayView<float> a2,
        ArrayView<float> dS2, MediatorShape m)
    {
        int r = index % m.Tokens, bh = index / m.Tokens, b = bh / m.Heads, h = bh - b * m.Heads, hd = m.HeadDim, n = m.Mediators;
        long g = ((long)b * m.Tokens + r) * m.Dim + h * hd, row = (long)(int)index * n, vmo = (long)bh * n * hd;
        float delta = 0;
        for (int k = 0; k < n; k++)
        {
            float da = 0;
            for (int c = 0; c < hd; c++) da += dO[g + c] * vm[vmo + k * hd + c];
            dS2[row + k] = da;
            delta += a2[row + k] * da;
        }
        for (int k = 0; k < n; k++) dS2[row + k] = a2[row + k] * (dS2[row + k] - delta);
    }

    /// <summary>Per (b, h, mediator k, channel c): dVm = A2^T dO, the sum over the tokens in order.</summary>
    public static void MediatorValueGradient(Index1D index, ArrayView<float> dO, ArrayView<float> a2, ArrayView<float> dVm, MediatorShape m)
    {
        int hd = m.HeadDim, n = m.Mediators, c = index % hd, rest = index / hd, k = rest % n, bh = rest / n, b = bh / m.Heads, h = bh - b * m.Heads;
        long a = (long)bh * m.Tokens * n + k, g = (long)b * m.Tokens * m.Dim + h * hd + c;
        float sum = 0;
        for (int r = 0; r < m.Tokens; r++) sum += a2[a + (long)r * n] * dO[g + (long)r * m.Dim];
        dVm[index] = sum;
    }

    /// <summary>Per (b, h, mediator k): dA1 = dVm_k v^T (N), then dS1 = A1 (dA1 - sum(A1 dA1)) in its row of dS1.</summary>
    public static void MediatorKeySoftmaxBackward(Index1D index, ArrayView<float> qkv, ArrayView<float> dVm, ArrayView<float> a1,
        ArrayView<float> dS1, MediatorShape m)
    {
        int n = m.Mediators, bh = index / n, b = bh / m.Heads, h = bh - b * m.Heads, hd = m.HeadDim, N = m.Tokens;
        long row = (long)(int)index * N, dv = (long)(int)index * hd, v = (long)b * N * 3 * m.Dim + 2 * m.Dim + h * hd;
        float delta = 0;
        for (int j = 0; j < N; j++)
        {
            float da = 0;
            long vj = v + (long)j * 3 * m.Dim;
            for (int c = 0; c < hd; c++) da += dVm[dv + c] * qkv[vj + c];
            dS1[row + j] = da;
            delta += a1[row + j] * da;
        }
        for (int j = 0; j < N; j++) dS1[row + j] = a1[row + j] * (dS1[row + j] - delta);
    }

    /// <summary>Per (b, h, mediator k, channel c): dT = s dS2^T q + s dS1 k (the mediator tokens' gradient).</summary>
    public static void MediatorTokenGradient(Index1D index, ArrayView<float> qkv, ArrayView<float> dS1, ArrayView<float> dS2,
        ArrayView<float> dT, MediatorShape m)
    {
        int hd = m.HeadDim, n = m.Mediators, N = m.Tokens, c = index % hd, rest = index / hd, k = rest % n, bh = rest / n;
        int b = bh / m.Heads, h = bh - b * m.Heads;
        long x = (long)b * N * 3 * m.Dim + h * hd + c, s2 = (long)bh * N * n + k, s1 = ((long)bh * n + k) * N;
        float fromQueries = 0, fromKeys = 0;
        for (int r = 0; r < N; r++) fromQueries += dS2[s2 + (long)r * n] * qkv[x + (long)r * 3 * m.Dim];
        for (int j = 0; j < N; j++) fromKeys += dS1[s1 + j] * qkv[x + m.Dim + (long)j * 3 * m.Dim];
        dT[index] = m.Scale * fromQueries + m.Scale * fromKeys;
    }

    /// <summary>
    /// Per (b, h, token r, channel c): dq = s dS2_r T, plus the adaptive pooling's transpose: dT of every mediator
    /// bin holding token r (bins may overlap), divided by the bin's size, in bin order.
    /// </summary>
    public static void MediatorQueryGradient(Index1D index, ArrayView<float> tokens, ArrayView<float> dS2, ArrayView<float> dT,
        ArrayView<float> dqkv, MediatorShape m)
    {
        int hd = m.HeadDim, n = m.Mediators, N = m.Tokens, c = index % hd, rest = index / hd, r = rest % N, bh = rest / N;
        int b = bh / m.Heads, h = bh - b * m.Heads;
        long s2 = ((long)bh * N + r) * n, t = (long)b * n * m.Dim + h * hd + c;
        float sum = 0;
        for (int k = 0; k < n; k++) sum += dS2[s2 + k] * tokens[t + (long)k * m.Dim];
        dqkv[((long)b * N + r) * 3 * m.Dim + h * hd + c] = AddPoolingGradient(m.Scale * sum, dT, bh, r, c, m);
    }

    /// <summary>
    /// dq plus the adaptive pooling's transpose for token r, channel c of item bh: dT (B, H, n, hd) of every mediator
    /// bin holding the token (bins may overlap), divided by the bin's size, in bin order.
    /// </summary>
    private static float AddPoolingGradient(float dq, ArrayView<float> dT, int bh, int r, int c, MediatorShape m)
    {
        int gi = r / m.GridW, gj = r - gi * m.GridW, mg = m.MedGrid;
        for (int i = 0; i < mg; i++)
        {
            int h0 = i * m.GridH / mg, h1 = ((i + 1) * m.GridH + mg - 1) / mg;
            if (gi < h0 || gi >= h1) continue;
            for (int j = 0; j < mg; j++)
            {
                int w0 = j * m.GridW / mg, w1 = ((j + 1) * m.GridW + mg - 1) / mg;
                if (gj < w0 || gj >= w1) continue;
                float inv = 1f / ((h1 - h0) * (w1 - w0));
                dq = dT[((long)bh * m.Mediators + i * mg + j) * m.HeadDim + c] * inv + dq;
            }
        }
        return dq;
    }

    /// <summary>
    /// For the product-based backward (Models.AttentionProducts): dq in dqkv (B*N, 3D), which holds s dS2 T, plus the
    /// pooling's transpose of dT, per (b, token r, channel of q).
    /// </summary>
    public static void MediatorPoolingGradientAdd(Index1D index, ArrayView<float> dT, ArrayView<float> dqkv, MediatorShape m)
    {
        int d = m.Dim, ch = index % d, rest = index / d, r = rest % m.Tokens, b = rest / m.Tokens, h = ch / m.HeadDim, c = ch - h * m.HeadDim;
        long at = ((long)b * m.Tokens + r) * 3 * d + ch;
        dqkv[at] = AddPoolingGradient(dqkv[at], dT, b * m.Heads + h, r, c, m);
    }

    /// <summary>Per (b, h, token j, channel c): dk = s dS1^T T.</summary>
    public static void MediatorKeyGradient(Index1D index, ArrayView<float> tokens, ArrayView<float> dS1, ArrayView<float> dqkv, MediatorShape m)
    {
        int hd = m.HeadDim, n = m.Mediators, N = m.Tokens, c = index % hd, rest = index / hd, j = rest % N, bh = rest / N;
        int b = bh / m.Heads, h = bh - b * m.Heads;
        long s1 = (long)bh * n * N + j, t = (long)b * n * m.Dim + h * hd + c;
        float sum = 0;
        for (int k = 0; k < n; k++) sum += dS1[s1 + (long)k * N] * tokens[t + (long)k * m.Dim];
        dqkv[((long)b * N + j) * 3 * m.Dim + m.Dim + h * hd + c] = m.Scale * sum;
    }

    /// <summary>
    /// Per (b, h, token j, channel c): dv = dwc^T(dO) + A1^T dVm. The depthwise conv's input gradient is a gather:
    /// token (a, e) collects tap t = (di + 1) 3 + (dj + 1) times dO of the output (a - di, e - dj) that read it.
    /// </summary>
    public static void MediatorValueInputGradient(Index1D index, ArrayView<float> dO, ArrayView<float> taps, ArrayView<float> a1,
        ArrayView<float> dVm, ArrayView<float> dqkv, MediatorShape m)
    {
        int hd = m.HeadDim, n = m.Mediators, N = m.Tokens, c = index % hd, rest = index / hd, j = rest % N, bh = rest / N;
        int b = bh / m.Heads, h = bh - b * m.Heads, ch = h * hd + c;
        float conv = DepthwiseInputGradient(dO, taps, b, j, ch, m);
        float sum = 0;
        long a1o = (long)bh * n * N + j, dvo = (long)bh * n * hd + c;
        for (int k = 0; k < n; k++) sum += a1[a1o + (long)k * N] * dVm[dvo + (long)k * hd];
        dqkv[((long)b * N + j) * 3 * m.Dim + 2 * m.Dim + ch] = conv + sum;
    }

    /// <summary>
    /// The depthwise conv's input gradient at token j, channel ch of image b, a gather: token (a, e) collects tap
    /// t = (di + 1) 3 + (dj + 1) times dO of the output (a - di, e - dj) that read it.
    /// </summary>
    private static float DepthwiseInputGradient(ArrayView<float> dO, ArrayView<float> taps, int b, int j, int ch, MediatorShape m)
    {
        int a = j / m.GridW, e = j - a * m.GridW;
        float conv = 0;
        for (int di = -1; di <= 1; di++)
        {
            int oi = a - di;
            if (oi < 0 || oi >= m.GridH) continue;
            for (int dj = -1; dj <= 1; dj++)
            {
                int oj = e - dj;
                if (oj < 0 || oj >= m.GridW) continue;
                int t = (di + 1) * 3 + dj + 1;
                conv += taps[(long)t * m.Dim + ch] * dO[((long)b * m.Tokens + oi * m.GridW + oj) * m.Dim + ch];
            }
        }
        return conv;
    }

    /// <summary>
    /// For the product-based backward (Models.AttentionProducts): dv in dqkv (B*N, 3D), which holds A1^T dVm, becomes
    /// dwc^T(dO) + dv, per (b, token j, channel of v).
    /// </summary>
    public static void DepthwiseInputGradientAdd(Index1D index, ArrayView<float> dO, ArrayView<float> taps, ArrayView<float> dqkv, MediatorShape m)
    {
        int d = m.Dim, ch = index % d, rest = index / d, j = rest % m.Tokens, b = rest / m.Tokens;
        long at = ((long)b * m.Tokens + j) * 3 * d + 2 * d + ch;
        dqkv[at] = DepthwiseInputGradient(dO, taps, b, j, ch, m) + dqkv[at];
    }

    /// <summary>
    /// Per (b, slot t in 0..9, channel c) of dTaps (B, 10, D): t &lt; 9 the tap's gradient sum_p dO_p v_(p + offset t)
    /// over image b's tokens p in grid order; t = 9 the conv bias's, sum_p dO_p. Overwritten. v is qkv's plus qkvBias
    /// (3D) when that is not empty.
    /// </summary>
    public static void DepthwiseGradientsPerImage(Index1D index, ArrayView<float> qkv, ArrayView<float> qkvBias, ArrayView<float> dO, ArrayView<float> dTaps,
        MediatorShape m)
    {
        int d = m.Dim, ch = index % d, rest = index / d, t = rest % 10, b = rest / 10, N = m.Tokens;
        long g = (long)b * N * d + ch;
        float sum = 0;
        if (t == 9)
        {
            for (int p = 0; p < N; p++) sum += dO[g + (long)p * d];
        }
        else
        {
            int di = t / 3 - 1, dj = t % 3 - 1;
            long image = (long)b * N * 3 * d;
            for (int i = 0; i < m.GridH; i++)
            {
                int a = i + di;
                if (a < 0 || a >= m.GridH) continue;
                for (int j = 0; j < m.GridW; j++)
                {
                    int e = j + dj;
                    if (e < 0 || e >= m.GridW) continue;
                    sum += dO[g + (long)(i * m.GridW + j) * d] * AttentionKernels.QkvValue(qkv, qkvBias, image + (long)(a * m.GridW + e) * 3 * d, 2 * d + ch);
                }
            }
        }
        dTaps[index] = sum;
    }

    /// <summary>
    /// Per (channel c, slot t in 0..9): the per-image tap and bias gradients (B, 10, D) added into the conv's
    /// weight gradient (D, 1, 3, 3) (t &lt; 9) and bias gradient (D) (t = 9), image by image in order, as the CPU layer adds them.
    /// </summary>
    public static void DepthwiseParameterGradients(Index1D index, ArrayView<float> dTaps, ArrayView<float> dWeight, ArrayView<float> dBias,
        int dim, int images)
    {
        int ch = index / 10, t = index - ch * 10;
        float acc = t == 9 ? dBias[ch] : dWeight[(long)ch * 9 + t];
        for (int b = 0; b < images; b++) acc += dTaps[((long)b * 10 + t) * dim + ch];
        if (t == 9) dBias[ch] = acc;
        else dWeight[(long)ch * 9 + t] = acc;
    }
}

/// <summary>The shape of one mediator attention layer's core, as a kernel argument.</summary>
internal readonly struct MediatorShape
{
    public MediatorShape(int heads, int headDim, int gridH, int gridW, int medGrid, float scale)
    {
        Heads = heads;
        HeadDim = headDim;
        Dim = heads * headDim;
        GridH = gridH;
        GridW = gridW;
        Tokens = gridH * gridW;
        MedGrid = medGrid;
        Mediators = medGrid * medGrid;
        Scale = scale;
    }

    public readonly int Heads, HeadDim, Dim, GridH, GridW, Tokens, MedGrid, Mediators;
    public readonly float Scale;
}
