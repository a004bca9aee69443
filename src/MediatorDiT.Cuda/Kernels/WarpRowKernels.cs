using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The row kernels with a warp per row: the warp's lanes take every WarpSize-th element of the row, so neighbouring
/// lanes read neighbouring floats (one memory transaction per warp, where a thread per row makes one per thread), and
/// the row's sums are combined by a butterfly of shuffles, after which every lane holds the same bits. Explicitly
/// grouped: a group holds whole warps, one row each (<see cref="RowOf"/>), and a warp past the last row leaves as a
/// whole, so no shuffle waits on a lane that left. The same formulas as <see cref="RowKernels"/> and
/// <see cref="BackwardKernels.AdaLayerNormInputGradient"/> and <see cref="BackwardKernels.SoftmaxBackward"/> (their reference twins, a thread per row), with the sums
/// in another order: equal to rounding.
/// </summary>
internal static class WarpRowKernels
{
    /// <summary>The row of the calling warp: warps numbered across the grid.</summary>
    private static int RowOf() => Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;

    /// <summary>The sum of every lane's <paramref name="value"/>, in every lane (the same bits in each).</summary>
    private static float WarpSum(float value)
    {
        for (int mask = Warp.WarpSize / 2; mask > 0; mask /= 2) value += Warp.ShuffleXor(value, mask);
        return value;
    }

    /// <summary>The maximum of every lane's <paramref name="value"/>, in every lane.</summary>
    private static float WarpMax(float value)
    {
        for (int mask = Warp.WarpSize / 2; mask > 0; mask /= 2) value = MathF.Max(value, Warp.ShuffleXor(value, mask));
        return value;
    }

    /// <summary>
    /// <see cref="RowKernels.AdaLayerNormForward"/> with a warp per row: xhat = (x - mean) rstd, y = xhat scale + xhat +
    /// shift (the row's image's shift and scale (B, d)), stats (mean, rstd) per row.
    /// </summary>
    public static void AdaLayerNormForward(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> y, ArrayView<float> stats, int rows, int d, int rowsPerImage, float eps)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * d;
        float sum = 0;
        for (int j = lane; j < d; j += lanes) sum += x[o + j];
        float mu = WarpSum(sum) / d;
        float var = 0;
        for (int j = lane; j < d; j += lanes)
        {
            float dev = x[o + j] - mu;
            var += dev * dev;
        }
        float rs = 1f / MathF.Sqrt(WarpSum(var) / d + eps);
        for (int j = lane; j < d; j += lanes)
        {
            float h = (x[o + j] - mu) * rs;
            xhat[o + j] = h;
            y[o + j] = h * scale[c + j] + h + shift[c + j];
        }
        if (lane == 0)
        {
            stats[2L * row] = mu;
            stats[2L * row + 1] = rs;
        }
    }

    /// <summary><see cref="BackwardKernels.AdaLayerNormInputGradient"/> with a warp per row (dx overwritten, or added to when accumulate is 1).</summary>
    public static void AdaLayerNormInputGradient(ArrayView<float> g, ArrayView<float> xhat, ArrayView<float> scale, ArrayView<float> stats,
        ArrayView<float> dx, int rows, int d, int rowsPerImage, int modStride, int accumulate)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * modStride;
        float sum = 0, dot = 0;
        for (int j = lane; j < d; j += lanes)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            sum += dh;
            dot += dh * xhat[o + j];
        }
        float meanDy = WarpSum(sum) / d, meanDyX = WarpSum(dot) / d, rstd = stats[2L * row + 1];
        for (int j = lane; j < d; j += lanes)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            float t = (xhat[o + j] * -meanDyX + dh + -meanDy) * rstd;
            dx[o + j] = accumulate != 0 ? dx[o + j] + t : t;
        }
    }

    /// <summary>
    /// <see cref="AttentionTileKernels.TileSoftmax"/> with a warp per row: softmax in place of the tile's rows of s
    /// (items, rows, N); lse (B, H, N) gets each row's log-sum-exp.
    /// </summary>
    public static void TileSoftmax(ArrayView<float> s, ArrayView<float> lse, int rows, AttentionTile t)
    {
        int row = RowOf();
        if (row >= rows) return;
        float l = SoftmaxRowInPlace(s, (long)row * t.Tokens, t.Tokens, s, 0, addBias: false);
        if (Warp.LaneIdx == 0) lse[t.LseIndex(row)] = l;
    }

    /// <summary><see cref="AttentionKernels.SoftmaxRowsWithBiasTable"/> with a warp per row: row r of x (rows, n) gets bias row r mod biasRows.</summary>
    public static void SoftmaxRowsWithBiasTable(ArrayView<float> x, ArrayView<float> bias, int rows, int n, int biasRows)
    {
        int row = RowOf();
        if (row >= rows) return;
        SoftmaxRowInPlace(x, (long)row * n, n, bias, (long)(row % biasRows) * n, addBias: true);
    }

    /// <summary>
    /// <see cref="BackwardKernels.SoftmaxBackward"/> with a warp per row: dp = p (dp - sum(p dp)) in place, per row of n
    /// (the mediator attention's two softmaxes, rows of N and of n mediators).
    /// </summary>
    public static void SoftmaxBackward(ArrayView<float> p, ArrayView<float> dp, int rows, int n)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * n;
        float dot = 0;
        for (int j = lane; j < n; j += lanes) dot += p[o + j] * dp[o + j];
        float delta = WarpSum(dot);
        for (int j = lane; j < n; j += lanes) dp[o + j] = p[o + j] * (dp[o + j] - delta);
    }

    /// <summary><see cref="RowKernels.SoftmaxRowInPlace"/> by the calling warp: the same steps, the row's max and sum over the lanes.</summary>
    private static float SoftmaxRowInPlace(ArrayView<float> x, long o, int n, ArrayView<float> bias, long bo, bool addBias)
    {
        int lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        float max = float.NegativeInfinity;
        for (int j = lane; j < n; j += lanes)
        {
            float v = x[o + j];
            if (addBias)
            {
                v += bias[bo + j];
                x[o + j] = v;
            }
            max = MathF.Max(max, v);
        }
        max = WarpMax(max);
        float sum = 0;
        for (int j = lane; j < n; j += lanes)
        {
            float e = DeviceMath.Exp(x[o + j] - max);
            x[o + j] = e;
            sum += e;
        }
        sum = WarpSum(sum);
        float inv = 1f / sum;
        for (int j = lane; j < n; j += lanes) x[o + j] *= inv;
        return max + DeviceMath.Log(sum);
    }
}
