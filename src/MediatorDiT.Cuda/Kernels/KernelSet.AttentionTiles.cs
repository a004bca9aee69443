using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launchers of <see cref="AttentionTileKernels"/>, the non-product steps of Models.AttentionProducts.</summary>
internal sealed partial class KernelSet
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, HeadLayout, int>? _fromHeadMajor;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, HeadLayout, int>? _toHeadMajor;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionTile>? _tileSoftmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, AttentionTile>? _tileSoftmaxWarp;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionTile>? _tileSoftmaxBackward;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, AttentionTile, int>? _tileSoftmaxBackwardKept;

    /// <summary>
    /// headMajor (B, H, N, hd) = the heads of rowMajor (B*N, layout.Ld) from column layout.Column, plus
    /// <paramref name="bias"/> (layout.Ld, a row's bias) when given: a product's bias added as its output is read.
    /// </summary>
    public void ToHeadMajor(ArrayView<float> rowMajor, ArrayView<float> headMajor, int batch, HeadLayout layout, ArrayView<float> bias = default)
    {
        long count = CheckHeadLayout(rowMajor, headMajor.Length, batch, layout, bias);
        (_toHeadMajor ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, HeadLayout, int>(
            AttentionTileKernels.ToHeadMajor))(ElementsPerThread.Threads(count), rowMajor, bias, headMajor, layout, (int)count);
    }

    /// <summary>rowMajor (B*N, layout.Ld) from column layout.Column = the heads of headMajor (B, H, N, hd).</summary>
    public void FromHeadMajor(ArrayView<float> headMajor, ArrayView<float> rowMajor, int batch, HeadLayout layout)
    {
        long count = CheckHeadLayout(rowMajor, headMajor.Length, batch, layout);
        (_fromHeadMajor ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, HeadLayout, int>(AttentionTileKernels.FromHeadMajor))(
            ElementsPerThread.Threads(count), headMajor, rowMajor, layout, (int)count);
    }

    /// <summary>Softmax of each of the tile's rows of s (items, tile.Rows, N) in place; lse (B, H, N) gets their log-sum-exps.</summary>
    public void TileSoftmax(ArrayView<float> s, ArrayView<float> lse, int items, AttentionTile tile)
    {
        long rows = CheckTileSoftmax(s, lse, items, tile);
        if (WarpRows)
            (_tileSoftmaxWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, AttentionTile>(WarpRowKernels.TileSoftmax))(
                RowLaunch(rows), s, lse, (int)rows, tile);
        else
            (_tileSoftmax ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionTile>(AttentionTileKernels.TileSoftmax))(
                (int)rows, s, lse, tile);
    }

    /// <summary>On a tile (items, tile.Rows, N): s (scaled logits) becomes P, dp (dO v^T) becomes P (dp - delta).</summary>
    public void TileSoftmaxBackward(ArrayView<float> s, ArrayView<float> dp, ArrayView<float> lse, ArrayView<float> delta, int items, AttentionTile tile)
    {
        long count = CheckTileSoftmaxBackward(s, dp, lse, delta, items, tile);
        (_tileSoftmaxBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionTile>(
            AttentionTileKernels.TileSoftmaxBackward))((int)count, s, dp, lse, delta, tile);
    }

    /// <summary>
    /// On a tile (items, tile.Rows, N), from the forward's probabilities p16 (the tile's part of them, kept in bf16):
    /// dp (dO v^T) becomes P (dp - delta).
    /// </summary>
    public void TileSoftmaxBackwardFromProbabilities(ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta, int items, AttentionTile tile)
    {
        long count = CheckTileProbabilities(p16, dp, delta, items, tile);
        (_tileSoftmaxBackwardKept ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, AttentionTile, int>(
            AttentionTileKernels.TileSoftmaxBackwardFromProbabilities))(ElementsPerThread.Threads(count), p16, dp, delta, tile, (int)count);
    }

    /// <summary>The tile's values (items x tile.Rows x N), after checking p16, dp and delta.</summary>
    private static long CheckTileProbabilities(ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta, int items, AttentionTile tile)
    {
        long rows = (long)items * tile.Rows, count = rows * tile.Tokens;
        Check(items >= 1 && tile.Rows >= 1 && p16.Length >= count && dp.Length >= count, "p16 and dp must hold the tile's items x rows x tokens values");
        Check(count <= int.MaxValue, "a tile holds at most 2^31 - 1 logits");
        Check(delta.Length >= tile.LseIndex((int)rows - 1) + 1, "delta is too short for the tile");
        return count;
    }

    /// <summary>The tile's rows (items x tile.Rows), after checking s and lse.</summary>
    private static long CheckTileSoftmax(ArrayView<float> s, ArrayView<float> lse, int items, AttentionTile tile)
    {
        long rows = (long)items * tile.Rows;
        Check(items >= 1 && tile.Rows >= 1 && s.Length >= rows * tile.Tokens, "s must hold the tile's items x rows x tokens logits");
        Check(lse.Length >= tile.LseIndex((int)rows - 1) + 1, "lse is too short for the tile");
        return rows;
    }

    /// <summary>The tile's values (items x tile.Rows x N), after checking s, dp, lse and delta.</summary>
    private static long CheckTileSoftmaxBackward(ArrayView<float> s, ArrayView<float> dp, ArrayView<float> lse, ArrayView<float> delta, int items, AttentionTile tile)
    {
        long rows = (long)items * tile.Rows, count = rows * tile.Tokens;
        Check(items >= 1 && tile.Rows >= 1 && s.Length >= count && dp.Length >= count, "s and dp must hold the tile's items x rows x tokens values");
        Check(count <= int.MaxValue, "a tile holds at most 2^31 - 1 logits");
        long last = tile.LseIndex((int)rows - 1) + 1;
        Check(lse.Length >= last && delta.Length >= last, "lse or delta is too short for the tile");
        return count;
    }

    /// <summary>delta (B, H, N) = rowsum(dO * O) over each head's channels of O and dO (B*N, D): what the softmax backward subtracts.</summary>
    public void FullAttentionDelta(ArrayView<float> o, ArrayView<float> dO, ArrayView<float> delta, int batch, int tokens, int heads, int headDim)
    {
        long rows = (long)batch * tokens, heads3 = rows * heads;
        Check(batch >= 1 && tokens >= 1 && heads >= 1 && headDim >= 1, "batch, tokens, heads and headDim must be positive");
        Check(o.Length >= rows * heads * headDim && dO.Length >= rows * heads * headDim && delta.Length >= heads3, "o, dO or delta is too short");
        (_fullDelta ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(
            AttentionBackwardKernels.FullAttentionDelta))((int)heads3, o, dO, delta, tokens, heads, headDim);
    }

    private static long CheckHeadLayout(ArrayView<float> rowMajor, long headMajorLength, int batch, HeadLayout l, ArrayView<float> bias = default)
    {
        Check(bias.Length == 0 || bias.Length == l.Ld, "a bias added to the moved values holds one row (ld values)");
        long rows = (long)batch * l.Tokens, count = rows * l.Heads * l.HeadDim;
        Check(batch >= 1 && l.Tokens >= 1 && l.Heads >= 1 && l.HeadDim >= 1, "batch, tokens, heads and headDim must be positive");
        Check(l.Column >= 0 && l.Ld >= l.Column + l.Heads * l.HeadDim, "the row-major side's rows must hold the heads from the column on");
        Check(count <= int.MaxValue, "a head-major buffer holds at most 2^31 - 1 values");
        Check(headMajorLength >= count && rowMajor.Length >= (rows - 1) * l.Ld + l.Column + l.Heads * l.HeadDim, "a head-major or row-major view is too short");
        return count;
    }
}
