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
    /// dst (B, H, N, hd) from the row-major src (B*N, ld) whose heads sit side by side from column
    /// <see cref="HeadLayout.Column"/>. Thread i is dst's element i, so a warp reads one head's channels of a row together.
    /// </summary>
    public static void ToHeadMajor(Index1D i, ArrayView<float> src, ArrayView<float> dst, HeadLayout l)
    {
        dst[i] = src[l.RowMajorIndex(i)];
    }

    /// <summary><see cref="ToHeadMajor"/> writing the bf16 copy alone: dst16 = bf16 of the head-major values (the operand a bf16 product reads).</summary>
    public static void ToHeadMajorBf16(Index1D i, ArrayView<float> src, ArrayView<ushort> dst16, HeadLayout l)
    {
        dst16[i] = Bf16.Round(src[l.RowMajorIndex(i)]);
    }

    /// <summary>The inverse of <see cref="ToHeadMajor"/>: dst (B*N, ld) at columns Column.. gets src (B, H, N, hd).</summary>
    public static void FromHeadMajor(Index1D i, ArrayView<float> src, ArrayView<float> dst, HeadLayout l)
    {
        dst[l.RowMajorIndex(i)] = src[i];
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
}

/// <summary>
/// A head-major view's geometry: B images of N tokens, H heads of HeadDim channels, the row-major side's row length
/// Ld and the column its first head starts at.
/// </summary>
internal readonly record struct HeadLayout(int Tokens, int Heads, int HeadDim, int Ld, int Column)
{
    /// <summary>The row-major index of head-major element i = ((b H + h) N + r) hd + c.</summary>
    public long RowMajorIndex(int i)
    {
        int c = i % HeadDim, rest = i / HeadDim, r = rest % Tokens, bh = rest / Tokens, b = bh / Heads, h = bh - b * Heads;
        return ((long)b * Tokens + r) * Ld + Column + h * HeadDim + c;
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
