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
    /// <see cref="RowKernels.AdaLayerNormForward"/> with a warp per row: xhat = (x - mean) rstd (not written when xhat
    /// is empty), y = xhat scale + xhat + shift (the row's image's shift and scale (B, d)), stats (mean, rstd) per row.
    /// </summary>
    public static void AdaLayerNormForward(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> y, ArrayView<float> stats, int rows, int d, int rowsPerImage, float eps)
    {
        int row = RowOf(), lane = Warp.LaneIdx;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * d;
        var m = RowMoments(x, o, d, eps);
        ModulatedRow.Write<float, Fp32Results>(x, shift, scale, xhat, y, o, c, d, m.Mean, m.Rstd);
        if (lane == 0) m.Store(stats, row);
    }

    /// <summary>
    /// <see cref="AdaLayerNormForward"/> writing the modulated output only as bf16 (y16, what the next bf16 product
    /// reads): the bits <see cref="Bf16Kernels.RoundToBf16"/> would give for <see cref="AdaLayerNormForward"/>'s y
    /// (an empty xhat is not written, as there).
    /// </summary>
    public static void AdaLayerNormForwardBf16(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<ushort> y16, ArrayView<float> stats, int rows, int d, int rowsPerImage, float eps)
    {
        int row = RowOf(), lane = Warp.LaneIdx;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * d;
        var m = RowMoments(x, o, d, eps);
        ModulatedRow.Write<ushort, Bf16Results>(x, shift, scale, xhat, y16, o, c, d, m.Mean, m.Rstd);
        if (lane == 0) m.Store(stats, row);
    }

    /// <summary>
    /// The adaLN-Zero gated residual dst = (branch + bias) gate + src (<see cref="ElementKernels.GatedResidualForward"/>;
    /// branch before its bias (d), gate (B, d) the row's image's) and then <see cref="AdaLayerNormForward"/> of dst, a
    /// warp per row. The LayerNorm reads dst back where each lane wrote its own elements (from the cache), where the two
    /// kernels read the whole tensor from memory again; the same bits: the lane adds its values into the mean's sum in
    /// <see cref="RowMoments"/>'s order as it writes them. dst may be src.
    /// </summary>
    public static void GatedResidualAdaLayerNorm(ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dst, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<float> y, ArrayView<float> stats,
        int rows, int d, int rowsPerImage, float eps) =>
        GatedResidualNormRow<float, Fp32Results>(src, branch, bias, gate, dst, shift, scale, xhat, y, stats, rows, d, rowsPerImage, eps);

    /// <summary>
    /// <see cref="GatedResidualAdaLayerNorm"/> writing the modulated output only as bf16 (y16): the bits of
    /// <see cref="ElementKernels.GatedResidualForward"/> then <see cref="AdaLayerNormForwardBf16"/>.
    /// </summary>
    public static void GatedResidualAdaLayerNormBf16(ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dst, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<ushort> y16, ArrayView<float> stats,
        int rows, int d, int rowsPerImage, float eps) =>
        GatedResidualNormRow<ushort, Bf16Results>(src, branch, bias, gate, dst, shift, scale, xhat, y16, stats, rows, d, rowsPerImage, eps);

    /// <summary>The calling warp's row of <see cref="GatedResidualAdaLayerNorm"/>, its output in <typeparamref name="TF"/>'s format.</summary>
    private static void GatedResidualNormRow<T, TF>(ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dst, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<T> y, ArrayView<float> stats,
        int rows, int d, int rowsPerImage, float eps) where T : unmanaged where TF : struct, IResultFormat<T>
    {
        int row = RowOf(), lane = Warp.LaneIdx;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * d;
        var m = GatedRowMoments(src, branch, bias, gate, dst, o, c, d, eps);
        ModulatedRow.Write<T, TF>(dst, shift, scale, xhat, y, o, c, d, m.Mean, m.Rstd);
        if (lane == 0) m.Store(stats, row);
    }

    /// <summary>
    /// Writes the row of dst = (branch + bias) gate + src at o (gate's row at c) and returns its <see cref="RowMoments"/>,
    /// the mean's sum taken from the values as they are written.
    /// </summary>
    private static Moments GatedRowMoments(ArrayView<float> src, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dst, long o, long c, int d, float eps)
    {
        int lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        float sum = 0;
        int j = lane;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            int j1 = j + lanes, j2 = j1 + lanes, j3 = j2 + lanes;
            float b0 = branch[o + j], b1 = branch[o + j1], b2 = branch[o + j2], b3 = branch[o + j3];
            float s0 = src[o + j], s1 = src[o + j1], s2 = src[o + j2], s3 = src[o + j3];
            float x0 = (b0 + bias[j]) * gate[c + j] + s0, x1 = (b1 + bias[j1]) * gate[c + j1] + s1;
            float x2 = (b2 + bias[j2]) * gate[c + j2] + s2, x3 = (b3 + bias[j3]) * gate[c + j3] + s3;
            dst[o + j] = x0;
            dst[o + j1] = x1;
            dst[o + j2] = x2;
            dst[o + j3] = x3;
            sum += x0;
            sum += x1;
            sum += x2;
            sum += x3;
        }
        for (; j < d; j += lanes)
        {
            float x0 = (branch[o + j] + bias[j]) * gate[c + j] + src[o + j];
            dst[o + j] = x0;
            sum += x0;
        }
        return MomentsFromSum(dst, o, d, sum, eps);
    }

    /// <summary>The mean and 1 / sqrt(variance + eps) of the row of d values at o, in every lane of the calling warp.</summary>
    private static Moments RowMoments(ArrayView<float> x, long o, int d, float eps)
    {
        int lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        // Each pass loads four of the lane's values before adding them, in the lane's order (j, j + lanes, ..).
        float sum = 0;
        int j = lane;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            float x0 = x[o + j], x1 = x[o + j + lanes], x2 = x[o + j + 2 * lanes], x3 = x[o + j + 3 * lanes];
            sum += x0;
            sum += x1;
            sum += x2;
            sum += x3;
        }
        for (; j < d; j += lanes) sum += x[o + j];
        return MomentsFromSum(x, o, d, sum, eps);
    }

    /// <summary>
    /// The row's moments from the lane's share of its sum (<paramref name="laneSum"/>, its values j, j + lanes, .. added
    /// in that order): the mean, then the variance from a second pass over the row.
    /// </summary>
    private static Moments MomentsFromSum(ArrayView<float> x, long o, int d, float laneSum, float eps)
    {
        int lanes = Warp.WarpSize;
        float mu = WarpSum(laneSum) / d;
        float var = 0;
        int j = Warp.LaneIdx;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            float d0 = x[o + j] - mu, d1 = x[o + j + lanes] - mu, d2 = x[o + j + 2 * lanes] - mu, d3 = x[o + j + 3 * lanes] - mu;
            var += d0 * d0;
            var += d1 * d1;
            var += d2 * d2;
            var += d3 * d3;
        }
        for (; j < d; j += lanes)
        {
            float dev = x[o + j] - mu;
            var += dev * dev;
        }
        return new Moments(mu, 1f / MathF.Sqrt(WarpSum(var) / d + eps));
    }

    /// <summary>A row's LayerNorm statistics, stored as (mean, rstd) at the row's pair of stats.</summary>
    private readonly struct Moments(float mean, float rstd)
    {
        public float Mean { get; } = mean;
        public float Rstd { get; } = rstd;

        public void Store(ArrayView<float> stats, int row)
        {
            stats[2L * row] = Mean;
            stats[2L * row + 1] = Rstd;
        }
    }

    /// <summary>
    /// <see cref="BackwardKernels.AdaLayerNormInputGradient"/> with a warp per row (dx overwritten, or addend + the
    /// gradient when accumulate is 1; with fromInput 1 xhat holds the input x, xhat made again as there).
    /// </summary>
    public static void AdaLayerNormInputGradient(ArrayView<float> g, ArrayView<float> xhat, ArrayView<float> scale, ArrayView<float> stats,
        ArrayView<float> addend, ArrayView<float> dx, int rows, int d, int rowsPerImage, int modStride, int accumulate, int fromInput)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * d, c = (long)(row / rowsPerImage) * modStride;
        float mean = stats[2L * row], rstd = stats[2L * row + 1];
        // Each pass loads four of the lane's values before using them, in the lane's order (j, j + lanes, ..).
        float sum = 0, dot = 0;
        int j = lane;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            int j1 = j + lanes, j2 = j1 + lanes, j3 = j2 + lanes;
            float g0 = g[o + j], g1 = g[o + j1], g2 = g[o + j2], g3 = g[o + j3];
            float s0 = scale[c + j], s1 = scale[c + j1], s2 = scale[c + j2], s3 = scale[c + j3];
            float x0 = BackwardKernels.Xhat(xhat[o + j], fromInput, mean, rstd), x1 = BackwardKernels.Xhat(xhat[o + j1], fromInput, mean, rstd);
            float x2 = BackwardKernels.Xhat(xhat[o + j2], fromInput, mean, rstd), x3 = BackwardKernels.Xhat(xhat[o + j3], fromInput, mean, rstd);
            float dh0 = g0 * s0 + g0, dh1 = g1 * s1 + g1, dh2 = g2 * s2 + g2, dh3 = g3 * s3 + g3;
            sum += dh0;
            dot += dh0 * x0;
            sum += dh1;
            dot += dh1 * x1;
            sum += dh2;
            dot += dh2 * x2;
            sum += dh3;
            dot += dh3 * x3;
        }
        for (; j < d; j += lanes)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            sum += dh;
            dot += dh * BackwardKernels.Xhat(xhat[o + j], fromInput, mean, rstd);
        }
        float meanDy = WarpSum(sum) / d, meanDyX = WarpSum(dot) / d;
        j = lane;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            int j1 = j + lanes, j2 = j1 + lanes, j3 = j2 + lanes;
            float g0 = g[o + j], g1 = g[o + j1], g2 = g[o + j2], g3 = g[o + j3];
            float s0 = scale[c + j], s1 = scale[c + j1], s2 = scale[c + j2], s3 = scale[c + j3];
            float x0 = BackwardKernels.Xhat(xhat[o + j], fromInput, mean, rstd), x1 = BackwardKernels.Xhat(xhat[o + j1], fromInput, mean, rstd);
            float x2 = BackwardKernels.Xhat(xhat[o + j2], fromInput, mean, rstd), x3 = BackwardKernels.Xhat(xhat[o + j3], fromInput, mean, rstd);
            float a0 = addend[o + j], a1 = addend[o + j1], a2 = addend[o + j2], a3 = addend[o + j3];
            float dh0 = g0 * s0 + g0, dh1 = g1 * s1 + g1, dh2 = g2 * s2 + g2, dh3 = g3 * s3 + g3;
            float t0 = (x0 * -meanDyX + dh0 + -meanDy) * rstd, t1 = (x1 * -meanDyX + dh1 + -meanDy) * rstd;
            float t2 = (x2 * -meanDyX + dh2 + -meanDy) * rstd, t3 = (x3 * -meanDyX + dh3 + -meanDy) * rstd;
            dx[o + j] = accumulate != 0 ? a0 + t0 : t0;
            dx[o + j1] = accumulate != 0 ? a1 + t1 : t1;
            dx[o + j2] = accumulate != 0 ? a2 + t2 : t2;
            dx[o + j3] = accumulate != 0 ? a3 + t3 : t3;
        }
        for (; j < d; j += lanes)
        {
            float gs = g[o + j], dh = gs * scale[c + j] + gs;
            float t = (BackwardKernels.Xhat(xhat[o + j], fromInput, mean, rstd) * -meanDyX + dh + -meanDy) * rstd;
            dx[o + j] = accumulate != 0 ? addend[o + j] + t : t;
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

    /// <summary>
    /// <see cref="TileSoftmax"/> writing the probabilities only as bf16 into p16 (what the product P V reads; s is left
    /// holding the unnormalised exponentials): the bits <see cref="Bf16Kernels.RoundToBf16"/> would give for
    /// <see cref="TileSoftmax"/>'s s.
    /// </summary>
    public static void TileSoftmaxBf16(ArrayView<float> s, ArrayView<ushort> p16, ArrayView<float> lse, int rows, AttentionTile t)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * t.Tokens;
        var e = ExponentiateRow(s, o, t.Tokens, s, 0, addBias: false);
        float inv = 1f / e.Sum;
        for (int j = lane; j < t.Tokens; j += lanes) p16[o + j] = Bf16.Round(s[o + j] * inv);
        if (lane == 0) lse[t.LseIndex(row)] = e.LogSumExp;
    }

    /// <summary>The longest row <see cref="TileSoftmaxBf16Short"/> takes: <see cref="ShortRowValuesPerLane"/> values per lane.</summary>
    public const int ShortRowValuesPerLane = 8;

    /// <summary>
    /// <see cref="TileSoftmaxBf16"/> for rows of at most <see cref="ShortRowValuesPerLane"/> x WarpSize logits (256 on a
    /// GPU: SiT's 256 tokens): each lane keeps its values in registers, so the row is read once and only P's bf16 copy is
    /// written (the general kernel reads it three times and writes the exponentials back). The same operations in the
    /// same order as <see cref="TileSoftmaxBf16"/>, so the same bits; s is not written.
    /// </summary>
    public static void TileSoftmaxBf16Short(ArrayView<float> s, ArrayView<ushort> p16, ArrayView<float> lse, int rows, AttentionTile t)
    {
        int row = RowOf();
        if (row >= rows) return;
        long o = (long)row * t.Tokens;
        var e = ShortRowSoftmax(new PlainLogits(s, o), t.Tokens, p16, s, o, writeFloats: false);
        if (Warp.LaneIdx == 0) lse[t.LseIndex(row)] = e.LogSumExp;
    }

    /// <summary><see cref="AttentionKernels.SoftmaxRowsWithBiasTable"/> with a warp per row: row r of x (rows, n) gets bias row r mod biasRows.</summary>
    public static void SoftmaxRowsWithBiasTable(ArrayView<float> x, ArrayView<float> bias, int rows, int n, int biasRows)
    {
        int row = RowOf();
        if (row >= rows) return;
        SoftmaxRowInPlace(x, (long)row * n, n, bias, (long)(row % biasRows) * n, addBias: true);
    }

    /// <summary>
    /// <see cref="SoftmaxRowsWithBiasTable"/> writing the probabilities as bf16 into p16 (rows, n), what mediator
    /// attention's products read, and into x as well only when <paramref name="keepFloats"/> is 1 (the training
    /// backward reads them; else x keeps the logits): the bits <see cref="SoftmaxRowsWithBiasTable"/> and
    /// <see cref="Bf16Kernels.RoundToBf16"/> give. Nothing but the probabilities is written: the biased logit and its
    /// exponential are made again in each pass (3 reads of a logit and 2 or 6 bytes written, where the two passes read
    /// 5 and write 4 floats).
    /// </summary>
    public static void SoftmaxRowsWithBiasTableBf16(ArrayView<float> x, ArrayView<float> bias, ArrayView<ushort> p16, int rows, int n, int biasRows,
        int keepFloats)
    {
        int row = RowOf(), lane = Warp.LaneIdx, lanes = Warp.WarpSize;
        if (row >= rows) return;
        long o = (long)row * n, bo = (long)(row % biasRows) * n;
        float max = float.NegativeInfinity;
        for (int j = lane; j < n; j += lanes) max = MathF.Max(max, x[o + j] + bias[bo + j]);
        max = WarpMax(max);
        float sum = 0;
        for (int j = lane; j < n; j += lanes) sum += DeviceMath.Exp(x[o + j] + bias[bo + j] - max);
        float inv = 1f / WarpSum(sum);
        for (int j = lane; j < n; j += lanes)
        {
            float p = DeviceMath.Exp(x[o + j] + bias[bo + j] - max) * inv;
            if (keepFloats != 0) x[o + j] = p;
            p16[o + j] = Bf16.Round(p);
        }
    }

    /// <summary>
    /// <see cref="SoftmaxRowsWithBiasTableBf16"/> for rows of at most <see cref="ShortRowValuesPerLane"/> x WarpSize
    /// (mediator attention's rows of n mediators, and its mediators' rows of SiT's 256 tokens): the row read once into
    /// registers. The same bits.
    /// </summary>
    public static void SoftmaxRowsWithBiasTableBf16Short(ArrayView<float> x, ArrayView<float> bias, ArrayView<ushort> p16, int rows, int n,
        int biasRows, int keepFloats)
    {
        int row = RowOf();
        if (row >= rows) return;
        long o = (long)row * n;
        ShortRowSoftmax(new BiasedLogits(x, o, bias, (long)(row % biasRows) * n), n, p16, x, o, keepFloats != 0);
    }

    /// <summary>The logits of a row: the n values at o.</summary>
    private interface IRowLogits
    {
        float Load(int j);
    }

    /// <summary>A row's logits as stored.</summary>
    private readonly struct PlainLogits(ArrayView<float> s, long o) : IRowLogits
    {
        private readonly ArrayView<float> _s = s;
        private readonly long _o = o;

        public float Load(int j) => _s[_o + j];
    }

    /// <summary>A row's logits plus a bias row, added as they are read (the in-place kernel's fl(x + bias)).</summary>
    private readonly struct BiasedLogits(ArrayView<float> x, long o, ArrayView<float> bias, long bo) : IRowLogits
    {
        private readonly ArrayView<float> _x = x, _bias = bias;
        private readonly long _o = o, _bo = bo;

        public float Load(int j) => _x[_o + j] + _bias[_bo + j];
    }

    /// <summary>
    /// The softmax of a row of at most <see cref="ShortRowValuesPerLane"/> x WarpSize logits by the calling warp, each
    /// lane's values held in registers: the probabilities rounded to bf16 into p16 at o, and into p at o as well when
    /// <paramref name="writeFloats"/>; the row's max and sum come back. The general kernels' operations in their order
    /// (the lane's values j = lane, lane + WarpSize, .., then the butterfly), so their bits.
    /// </summary>
    private static Exponentials ShortRowSoftmax<TLogits>(TLogits logits, int n, ArrayView<ushort> p16, ArrayView<float> p, long o, bool writeFloats)
        where TLogits : struct, IRowLogits
    {
        int lanes = Warp.WarpSize;
        int j0 = Warp.LaneIdx, j1 = j0 + lanes, j2 = j1 + lanes, j3 = j2 + lanes, j4 = j3 + lanes, j5 = j4 + lanes, j6 = j5 + lanes, j7 = j6 + lanes;
        float x0 = j0 < n ? logits.Load(j0) : 0f, x1 = j1 < n ? logits.Load(j1) : 0f, x2 = j2 < n ? logits.Load(j2) : 0f, x3 = j3 < n ? logits.Load(j3) : 0f;
        float x4 = j4 < n ? logits.Load(j4) : 0f, x5 = j5 < n ? logits.Load(j5) : 0f, x6 = j6 < n ? logits.Load(j6) : 0f, x7 = j7 < n ? logits.Load(j7) : 0f;
        float max = float.NegativeInfinity;
        if (j0 < n) max = MathF.Max(max, x0);
        if (j1 < n) max = MathF.Max(max, x1);
        if (j2 < n) max = MathF.Max(max, x2);
        if (j3 < n) max = MathF.Max(max, x3);
        if (j4 < n) max = MathF.Max(max, x4);
        if (j5 < n) max = MathF.Max(max, x5);
        if (j6 < n) max = MathF.Max(max, x6);
        if (j7 < n) max = MathF.Max(max, x7);
        max = WarpMax(max);
        float e0 = DeviceMath.Exp(x0 - max), e1 = DeviceMath.Exp(x1 - max), e2 = DeviceMath.Exp(x2 - max), e3 = DeviceMath.Exp(x3 - max);
        float e4 = DeviceMath.Exp(x4 - max), e5 = DeviceMath.Exp(x5 - max), e6 = DeviceMath.Exp(x6 - max), e7 = DeviceMath.Exp(x7 - max);
        float sum = 0;
        if (j0 < n) sum += e0;
        if (j1 < n) sum += e1;
        if (j2 < n) sum += e2;
        if (j3 < n) sum += e3;
        if (j4 < n) sum += e4;
        if (j5 < n) sum += e5;
        if (j6 < n) sum += e6;
        if (j7 < n) sum += e7;
        var e = new Exponentials(max, WarpSum(sum));
        float inv = 1f / e.Sum;
        StoreProbability(p16, p, o + j0, j0 < n, e0 * inv, writeFloats);
        StoreProbability(p16, p, o + j1, j1 < n, e1 * inv, writeFloats);
        StoreProbability(p16, p, o + j2, j2 < n, e2 * inv, writeFloats);
        StoreProbability(p16, p, o + j3, j3 < n, e3 * inv, writeFloats);
        StoreProbability(p16, p, o + j4, j4 < n, e4 * inv, writeFloats);
        StoreProbability(p16, p, o + j5, j5 < n, e5 * inv, writeFloats);
        StoreProbability(p16, p, o + j6, j6 < n, e6 * inv, writeFloats);
        StoreProbability(p16, p, o + j7, j7 < n, e7 * inv, writeFloats);
        return e;
    }

    private static void StoreProbability(ArrayView<ushort> p16, ArrayView<float> p, long at, bool inRow, float value, bool writeFloats)
    {
        if (!inRow) return;
        if (writeFloats) p[at] = value;
        p16[at] = Bf16.Round(value);
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
        var e = ExponentiateRow(x, o, n, bias, bo, addBias);
        float inv = 1f / e.Sum;
        for (int j = lane; j < n; j += lanes) x[o + j] *= inv;
        return e.LogSumExp;
    }

    /// <summary>
    /// The softmax's first steps on the row of n at o (plus the bias row at bo when addBias): x becomes exp(x - max),
    /// and the row's max and sum of exponentials come back, in every lane.
    /// </summary>
    private static Exponentials ExponentiateRow(ArrayView<float> x, long o, int n, ArrayView<float> bias, long bo, bool addBias)
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
        return new Exponentials(max, WarpSum(sum));
    }

    /// <summary>A softmax row's max and sum of exp(x - max); its log-sum-exp is max + log(sum).</summary>
    private readonly struct Exponentials(float max, float sum)
    {
        public float Max { get; } = max;
        public float Sum { get; } = sum;
        public float LogSumExp => Max + DeviceMath.Log(Sum);
    }
}

/// <summary>
/// The write pass the adaLN forward kernels share (alone and after a gated residual), by the calling warp: xhat = (x - mean) rstd (stored unless
/// xhat is empty) and y = xhat scale + xhat + shift over the row at o (its image's shift and scale at c), stored in the
/// output's format. Each lane loads four of its values before the first store.
/// </summary>
internal static class ModulatedRow
{
    public static void Write<T, TF>(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<T> y,
        long o, long c, int d, float mean, float rstd) where T : unmanaged where TF : struct, IResultFormat<T>
    {
        int lanes = Warp.WarpSize, j = Warp.LaneIdx;
        bool writeXhat = xhat.Length > 0;
        for (; j + 3 * lanes < d; j += 4 * lanes)
        {
            int j1 = j + lanes, j2 = j1 + lanes, j3 = j2 + lanes;
            float x0 = x[o + j], x1 = x[o + j1], x2 = x[o + j2], x3 = x[o + j3];
            float s0 = scale[c + j], s1 = scale[c + j1], s2 = scale[c + j2], s3 = scale[c + j3];
            float b0 = shift[c + j], b1 = shift[c + j1], b2 = shift[c + j2], b3 = shift[c + j3];
            float h0 = (x0 - mean) * rstd, h1 = (x1 - mean) * rstd, h2 = (x2 - mean) * rstd, h3 = (x3 - mean) * rstd;
            if (writeXhat)
            {
                xhat[o + j] = h0;
                xhat[o + j1] = h1;
                xhat[o + j2] = h2;
                xhat[o + j3] = h3;
            }
            y[o + j] = default(TF).From(h0 * s0 + h0 + b0);
            y[o + j1] = default(TF).From(h1 * s1 + h1 + b1);
            y[o + j2] = default(TF).From(h2 * s2 + h2 + b2);
            y[o + j3] = default(TF).From(h3 * s3 + h3 + b3);
        }
        for (; j < d; j += lanes)
        {
            float h = (x[o + j] - mean) * rstd;
            if (writeXhat) xhat[o + j] = h;
            y[o + j] = default(TF).From(h * scale[c + j] + h + shift[c + j]);
        }
    }
}
