using ILGPU;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The element and row kernels of full attention computed as matrix products (Models.AttentionProducts): the
/// moves between the blocks' row-major layout (B*N, ld) and the head-major layout (B, H, N, hd) that lets one
/// strided-batched product cover every (image, head) item, and the softmax steps on a tile of logits
/// (items, rows, N), the rows <see cref="AttentionTile.Row0"/>.. of the items <see cref="AttentionTile.Item0"/>..
/// </summary>
internal static class AttentionTileKernels
{
    /// <summary>
    /// dst (B, H, N, hd, n values) from the row-major src (B*N, ld) whose heads sit side by side from column
    /// <see cref="HeadLayout.Column"/>, plus bias (ld) at the value's column where bias is not empty (a product's
    /// bias added as it is read: fl(src + bias)). Elements i of dst <see cref="ElementsPerThread"/> (loads first), so a
    /// warp reads one head's channels of a row together.
    /// </summary>
    public static void ToHeadMajor(Index1D t, ArrayView<float> src, ArrayView<float> bias, ArrayView<float> dst, HeadLayout l, int n) =>
        HeadMajorMove.Gather<float, Fp32Results>(t, src, bias, dst, l, n);

    /// <summary><see cref="ToHeadMajor"/> writing the bf16 copy alone: dst16 = bf16 of the head-major values (the operand a bf16 product reads).</summary>
    public static void ToHeadMajorBf16(Index1D t, ArrayView<float> src, ArrayView<float> bias, ArrayView<ushort> dst16, HeadLayout l, int n) =>
        HeadMajorMove.Gather<ushort, Bf16Results>(t, src, bias, dst16, l, n);

    /// <summary>
    /// <see cref="FromHeadMajor"/> that also writes dst16 = bf16 of each value moved (at dst's index): a bf16 product's
    /// operand; dst itself only when <paramref name="floats"/> is 1 (a sampling forward's proj reads dst16 alone).
    /// </summary>
    public static void FromHeadMajorWithBf16(Index1D t, ArrayView<float> src, ArrayView<float> dst, ArrayView<ushort> dst16, HeadLayout l, int n, int floats)
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? src[i0] : 0f, v1 = i1 < n ? src[i1] : 0f, v2 = i2 < n ? src[i2] : 0f, v3 = i3 < n ? src[i3] : 0f;
        if (i0 < n) Store(dst, dst16, l.RowMajorIndex(i0), v0, floats);
        if (i1 < n) Store(dst, dst16, l.RowMajorIndex(i1), v1, floats);
        if (i2 < n) Store(dst, dst16, l.RowMajorIndex(i2), v2, floats);
        if (i3 < n) Store(dst, dst16, l.RowMajorIndex(i3), v3, floats);
    }

    private static void Store(ArrayView<float> dst, ArrayView<ushort> dst16, long index, float value, int floats)
    {
        if (floats != 0) dst[index] = value;
        dst16[index] = Bf16.Round(value);
    }

    /// <summary>The inverse of <see cref="ToHeadMajor"/>: dst (B*N, ld) at columns Column.. gets src (B, H, N, hd, n values).</summary>
    public static void FromHeadMajor(Index1D t, ArrayView<float> src, ArrayView<float> dst, HeadLayout l, int n)
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? src[i0] : 0f, v1 = i1 < n ? src[i1] : 0f, v2 = i2 < n ? src[i2] : 0f, v3 = i3 < n ? src[i3] : 0f;
        if (i0 < n) dst[l.RowMajorIndex(i0)] = v0;
        if (i1 < n) dst[l.RowMajorIndex(i1)] = v1;
        if (i2 < n) dst[l.RowMajorIndex(i2)] = v2;
        if (i3 < n) dst[l.RowMajorIndex(i3)] = v3;
    }

    /// <summary>
    /// Softmax in place of each row of the tile's scaled logits s (items, rows, N), as Nn.SoftmaxRows.Forward
    /// (FastExp's bits); lse (B, H, N) gets the row's log-sum-exp at its item and row. Thread = a tile row.
    /// </summary>
    public static void TileSoftmax(Index1D row, ArrayView<float> s, ArrayView<float> lse, AttentionTile t)
    {
        lse[t.LseIndex(row)] = RowKernels.SoftmaxRowInPlace(s, (long)(int)row * t.Tokens, t.Tokens, s, 0, addBias: false);
    }

    /// <summary>
    /// The softmax backward on a tile, per element: from the scaled logits s and dP = dO v^T, the probability
    /// p = exp(s - lse) (the forward's, recomputed) replaces s and dS = p (dP - delta) replaces dP, delta = rowsum(dO * O)
    /// (B, H, N). The logit scale of dS is left to the products that read it.
    /// </summary>
    public static void TileSoftmaxBackward(Index1D i, ArrayView<float> s, ArrayView<float> dp, ArrayView<float> lse, ArrayView<float> delta,
        AttentionTile t)
    {
        long g = t.LseIndex(i / t.Tokens);
        float p = DeviceMath.Exp(s[i] - lse[g]);
        s[i] = p;
        dp[i] = p * (dp[i] - delta[g]);
    }

    /// <summary>
    /// <see cref="TileSoftmaxBackward"/> writing P and dS only as bf16 (p16, ds16: the operands of the products that
    /// read them), the bits <see cref="Bf16Kernels.RoundToBf16"/> would give for the fp32 twin's s and dp.
    /// </summary>
    public static void TileSoftmaxBackwardBf16(Index1D i, ArrayView<float> s, ArrayView<float> dp, ArrayView<float> lse, ArrayView<float> delta,
        ArrayView<ushort> p16, ArrayView<ushort> ds16, AttentionTile t)
    {
        long g = t.LseIndex(i / t.Tokens);
        float p = DeviceMath.Exp(s[i] - lse[g]);
        p16[i] = Bf16.Round(p);
        ds16[i] = Bf16.Round(p * (dp[i] - delta[g]));
    }

    /// <summary>
    /// The softmax backward on a tile from the forward's probabilities kept in bf16 (p16, the tile's part of them:
    /// items, rows, N): dS = p (dP - delta) with p the kept value widened and delta = rowsum(dO * O) (B, H, N), written
    /// in place of dp. The logit scale of dS is left to the products that read it. n values, <see cref="ElementsPerThread"/>.
    /// </summary>
    public static void TileSoftmaxBackwardFromProbabilities(Index1D t, ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta,
        AttentionTile tile, int n) =>
        KeptProbabilitiesBackward.Run<float, Fp32Results>(t, p16, dp, delta, dp, tile, n);

    /// <summary>
    /// <see cref="TileSoftmaxBackwardFromProbabilities"/> writing dS only as bf16 (ds16, the operand of the products that
    /// read it; dp is read, not written): the bits <see cref="Bf16Kernels.RoundToBf16"/> gives for the fp32 twin's.
    /// </summary>
    public static void TileSoftmaxBackwardFromProbabilitiesBf16(Index1D t, ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta,
        ArrayView<ushort> ds16, AttentionTile tile, int n) =>
        KeptProbabilitiesBackward.Run<ushort, Bf16Results>(t, p16, dp, delta, ds16, tile, n);
}

/// <summary>The body the two head-major gathers share, in the output's format (fp32, or the bf16 operand).</summary>
internal static class HeadMajorMove
{
    /// <summary>
    /// dst (B, H, N, hd, n values) from the row-major src, plus bias at the value's column unless bias is empty,
    /// <see cref="ElementsPerThread"/>: thread t's four loads first, then its stores.
    /// </summary>
    public static void Gather<T, TF>(int t, ArrayView<float> src, ArrayView<float> bias, ArrayView<T> dst, HeadLayout l, int n)
        where T : unmanaged where TF : struct, IResultFormat<T>
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? Load(src, bias, l, i0) : 0f, v1 = i1 < n ? Load(src, bias, l, i1) : 0f;
        float v2 = i2 < n ? Load(src, bias, l, i2) : 0f, v3 = i3 < n ? Load(src, bias, l, i3) : 0f;
        if (i0 < n) dst[i0] = default(TF).From(v0);
        if (i1 < n) dst[i1] = default(TF).From(v1);
        if (i2 < n) dst[i2] = default(TF).From(v2);
        if (i3 < n) dst[i3] = default(TF).From(v3);
    }

    /// <summary>Head-major element i's value: src's, plus its column's bias when there is one (no add otherwise, so -0 stays -0).</summary>
    private static float Load(ArrayView<float> src, ArrayView<float> bias, HeadLayout l, int i)
    {
        long index = l.RowMajorIndex(i, out int column);
        return bias.Length > 0 ? src[index] + bias[column] : src[index];
    }
}

/// <summary>The body the two softmax backwards from kept probabilities share, in dS's format (fp32, or the bf16 operand).</summary>
internal static class KeptProbabilitiesBackward
{
    /// <summary>ds[i] = widen(p16[i]) (dp[i] - delta at i's row) for n values, <see cref="ElementsPerThread"/>: thread t's loads first, then its stores.</summary>
    public static void Run<T, TF>(int t, ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta, ArrayView<T> ds, AttentionTile tile, int n)
        where T : unmanaged where TF : struct, IResultFormat<T>
    {
        int stride = ElementsPerThread.Threads(n), i0 = t, i1 = i0 + stride, i2 = i1 + stride, i3 = i2 + stride;
        float v0 = i0 < n ? Value(p16, dp, delta, tile, i0) : 0f, v1 = i1 < n ? Value(p16, dp, delta, tile, i1) : 0f;
        float v2 = i2 < n ? Value(p16, dp, delta, tile, i2) : 0f, v3 = i3 < n ? Value(p16, dp, delta, tile, i3) : 0f;
        if (i0 < n) ds[i0] = default(TF).From(v0);
        if (i1 < n) ds[i1] = default(TF).From(v1);
        if (i2 < n) ds[i2] = default(TF).From(v2);
        if (i3 < n) ds[i3] = default(TF).From(v3);
    }

    private static float Value(ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta, AttentionTile tile, int i) =>
        Bf16.Widen(p16[i]) * (dp[i] - delta[tile.LseIndex(i / tile.Tokens)]);
}

/// <summary>
/// A head-major view's geometry: B images of N tokens, H heads of HeadDim channels, the row-major side's row length
/// Ld and the column its first head starts at.
/// </summary>
internal readonly record struct HeadLayout(int Tokens, int Heads, int HeadDim, int Ld, int Column)
{
    /// <summary>The row-major index of head-major element i = ((b H + h) N + r) hd + c.</summary>
    public long RowMajorIndex(int i) => RowMajorIndex(i, out _);

    /// <summary>The row-major index of head-major element i, and its column in a row-major row.</summary>
    public long RowMajorIndex(int i, out int column)
    {
        int c = i % HeadDim, rest = i / HeadDim, r = rest % Tokens, bh = rest / Tokens, b = bh / Heads, h = bh - b * Heads;
        column = Column + h * HeadDim + c;
        return ((long)b * Tokens + r) * Ld + column;
    }
}

/// <summary>
/// A tile of attention logits: the query rows Row0 .. Row0 + Rows - 1 of the (image, head) items Item0 .., each row
/// N = Tokens long, stored (items, Rows, N).
/// </summary>
internal readonly record struct AttentionTile(int Tokens, int Rows, int Item0, int Row0)
{
    /// <summary>The (B, H, N) index of the tile's row <paramref name="row"/>.</summary>
    public long LseIndex(int row) => (long)(Item0 + row / Rows) * Tokens + Row0 + row % Rows;
}
