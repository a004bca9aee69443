using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>
/// The launchers of the kernels that write a bf16 product's operand themselves, beside or instead of their fp32
/// output, so that no separate <see cref="RoundToBf16"/> pass reads the fp32 tensor again. Each gives the bits its fp32
/// twin followed by <see cref="RoundToBf16"/> gives (the tests hold them to that); a row kernel's thread-per-row path
/// is that composition.
/// </summary>
internal sealed partial class KernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, int, int, float>? _adaLnWarpBf16;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, int, int, float>? _gatedAdaLnWarpBf16;
    private Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, AttentionTile>? _tileSoftmaxWarpBf16, _tileSoftmaxShortBf16;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, int, int, int>? _softmaxTableWarpBf16, _softmaxTableShortBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, AttentionTile>? _tileSoftmaxBackwardBf16;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, AttentionTile, int>? _tileSoftmaxBackwardKeptBf16;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, int, int>? _geluBf16;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, int, int, int>? _geluBackwardBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, HeadLayout, int>? _toHeadMajorBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, HeadLayout, int, int>? _fromHeadMajorWithBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, int, int, int, int>? _branchGradBf16;

    /// <summary>
    /// <see cref="AdaLayerNormForward"/> with the modulated output y16 in bf16: xhat and stats as there. A warp per row
    /// writes y16 alone; a thread per row writes the fp32 <paramref name="y"/> (scratch, as long as x) and rounds it.
    /// xhat, as there, is not written when empty.
    /// </summary>
    public void AdaLayerNormForwardBf16(ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat, ArrayView<float> y,
        ArrayView<ushort> y16, ArrayView<float> stats, int d, int rowsPerImage, float eps = LayerNorm.DefaultEps)
    {
        Check(y16.Length >= x.Length, "y16 is shorter than x");
        if (!WarpRows)
        {
            AdaLayerNormForward(x, shift, scale, xhat, y, stats, d, rowsPerImage, eps);
            RoundToBf16(y.SubView(0, x.Length), y16);
            return;
        }
        int rows = CheckAdaLayerNorm(x, shift, scale, xhat, stats, d, rowsPerImage);
        if (rows == 0) return;
        (_adaLnWarpBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>,
            ArrayView<float>, int, int, int, float>(WarpRowKernels.AdaLayerNormForwardBf16))(RowLaunch(rows), x, shift, scale, xhat, y16, stats, rows, d,
            rowsPerImage, eps);
    }

    /// <summary>
    /// <see cref="GatedResidualAdaLayerNorm"/> with the modulated output y16 in bf16, as <see cref="AdaLayerNormForwardBf16"/>:
    /// a warp per row writes y16 alone; a thread per row runs the gated residual, then that LayerNorm through the fp32
    /// <paramref name="y"/> (scratch, as long as r.Dst).
    /// </summary>
    public void GatedResidualAdaLayerNormBf16(in GatedResidualViews r, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> xhat,
        ArrayView<float> y, ArrayView<ushort> y16, ArrayView<float> stats, int d, int rowsPerImage, float eps = LayerNorm.DefaultEps)
    {
        if (!WarpRows)
        {
            GatedResidualForward(r.Src, r.Branch, r.Bias, r.Gate, r.Dst, d, rowsPerImage);
            AdaLayerNormForwardBf16(r.Dst, shift, scale, xhat, y, y16, stats, d, rowsPerImage, eps);
            return;
        }
        Check(y16.Length >= r.Dst.Length, "y16 is shorter than dst");
        int rows = CheckGatedResidualAdaLayerNorm(r, shift, scale, xhat, stats, d, rowsPerImage);
        if (rows == 0) return;
        (_gatedAdaLnWarpBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, int, int, float>(WarpRowKernels.GatedResidualAdaLayerNormBf16))(
            RowLaunch(rows), r.Src, r.Branch, r.Bias, r.Gate, r.Dst, shift, scale, xhat, y16, stats, rows, d, rowsPerImage, eps);
    }

    /// <summary>
    /// <see cref="TileSoftmax"/> with the probabilities in bf16 (p16, as long as the tile); lse as there. A warp per row
    /// writes p16 alone (s is left holding the unnormalised exponentials, or, for rows of at most 8 x the warp's width,
    /// read once into registers and not written); a thread per row runs the softmax in place and rounds s.
    /// </summary>
    public void TileSoftmaxBf16(ArrayView<float> s, ArrayView<ushort> p16, ArrayView<float> lse, int items, AttentionTile tile)
    {
        long rows = (long)items * tile.Rows;
        Check(p16.Length >= rows * tile.Tokens, "p16 must hold the tile's items x rows x tokens values");
        if (!WarpRows)
        {
            TileSoftmax(s, lse, items, tile);
            RoundToBf16(s.SubView(0, rows * tile.Tokens), p16);
            return;
        }
        CheckTileSoftmax(s, lse, items, tile);
        if (tile.Tokens <= WarpRowKernels.ShortRowValuesPerLane * _accelerator.WarpSize)
            (_tileSoftmaxShortBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, AttentionTile>(
                WarpRowKernels.TileSoftmaxBf16Short))(RowLaunch(rows), s, p16, lse, (int)rows, tile);
        else
            (_tileSoftmaxWarpBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, int, AttentionTile>(
                WarpRowKernels.TileSoftmaxBf16))(RowLaunch(rows), s, p16, lse, (int)rows, tile);
    }

    /// <summary>
    /// <see cref="SoftmaxRowsWithBiasTable"/> with the probabilities in bf16 (p16, rows x n), and in x as well only when
    /// <paramref name="keepFloats"/> (else x is left holding what a warp per row leaves there: the logits). A warp per
    /// row reads each logit once (rows of at most 8 x the warp's width, in registers) or three times and writes only
    /// the probabilities; a thread per row runs the softmax in place and rounds x.
    /// </summary>
    public void SoftmaxRowsWithBiasTableBf16(ArrayView<float> x, ArrayView<float> bias, ArrayView<ushort> p16, int rows, int n, int biasRows, bool keepFloats)
    {
        Check(p16.Length >= (long)rows * n, "p16 must hold rows x n values");
        if (!WarpRows)
        {
            SoftmaxRowsWithBiasTable(x, bias, rows, n, biasRows);
            RoundToBf16(x.SubView(0, (long)rows * n), p16);
            return;
        }
        Check(rows >= 0 && n >= 1 && biasRows >= 1 && x.Length >= (long)rows * n && bias.Length >= (long)biasRows * n, "x or the bias table is too short");
        if (rows == 0) return;
        bool shortRows = n <= WarpRowKernels.ShortRowValuesPerLane * _accelerator.WarpSize;
        var kernel = shortRows
            ? _softmaxTableShortBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, int, int, int>(
                WarpRowKernels.SoftmaxRowsWithBiasTableBf16Short)
            : _softmaxTableWarpBf16 ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, int, int, int>(
                WarpRowKernels.SoftmaxRowsWithBiasTableBf16);
        kernel(RowLaunch(rows), x, bias, p16, rows, n, biasRows, keepFloats ? 1 : 0);
    }

    /// <summary><see cref="TileSoftmaxBackward"/> writing P and dS only in bf16, into p16 and ds16 (s and dp are read, not written).</summary>
    public void TileSoftmaxBackwardBf16(ArrayView<float> s, ArrayView<float> dp, ArrayView<float> lse, ArrayView<float> delta, ArrayView<ushort> p16,
        ArrayView<ushort> ds16, int items, AttentionTile tile)
    {
        long count = CheckTileSoftmaxBackward(s, dp, lse, delta, items, tile);
        Check(p16.Length >= count && ds16.Length >= count, "p16 and ds16 must hold the tile's items x rows x tokens values");
        (_tileSoftmaxBackwardBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<ushort>, ArrayView<ushort>, AttentionTile>(AttentionTileKernels.TileSoftmaxBackwardBf16))((int)count, s, dp, lse, delta, p16, ds16, tile);
    }

    /// <summary><see cref="TileSoftmaxBackwardFromProbabilities"/> writing dS only in bf16, into ds16 (dp is read, not written).</summary>
    public void TileSoftmaxBackwardFromProbabilitiesBf16(ArrayView<ushort> p16, ArrayView<float> dp, ArrayView<float> delta, ArrayView<ushort> ds16,
        int items, AttentionTile tile)
    {
        long count = CheckTileProbabilities(p16, dp, delta, items, tile);
        Check(ds16.Length >= count, "ds16 must hold the tile's items x rows x tokens values");
        (_tileSoftmaxBackwardKeptBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>,
            AttentionTile, int>(AttentionTileKernels.TileSoftmaxBackwardFromProbabilitiesBf16))(ElementsPerThread.Threads(count), p16, dp, delta, ds16, tile, (int)count);
    }

    /// <summary><see cref="ToHeadMajor"/> into the bf16 copy alone: headMajor16 (B, H, N, hd) = bf16 of the heads of rowMajor (plus bias, when given).</summary>
    public void ToHeadMajorBf16(ArrayView<float> rowMajor, ArrayView<ushort> headMajor16, int batch, HeadLayout layout, ArrayView<float> bias = default)
    {
        long count = CheckHeadLayout(rowMajor, headMajor16.Length, batch, layout, bias);
        (_toHeadMajorBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, HeadLayout, int>(
            AttentionTileKernels.ToHeadMajorBf16))(ElementsPerThread.Threads(count), rowMajor, bias, headMajor16, layout, (int)count);
    }

    /// <summary>
    /// <see cref="FromHeadMajor"/> that also writes rowMajor16 (as long as rowMajor) = bf16 of every value it moves, and
    /// rowMajor itself only when <paramref name="floats"/>.
    /// </summary>
    public void FromHeadMajorWithBf16(ArrayView<float> headMajor, ArrayView<float> rowMajor, ArrayView<ushort> rowMajor16, int batch, HeadLayout layout,
        bool floats = true)
    {
        long count = CheckHeadLayout(rowMajor, headMajor.Length, batch, layout);
        Check(rowMajor16.Length >= rowMajor.Length, "rowMajor16 is shorter than rowMajor");
        (_fromHeadMajorWithBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, HeadLayout, int, int>(
            AttentionTileKernels.FromHeadMajorWithBf16))(ElementsPerThread.Threads(count), headMajor, rowMajor, rowMajor16, layout, (int)count, floats ? 1 : 0);
    }

    /// <summary>
    /// y16 = bf16(gelu(x16 + bias)) over x16's length, fc1's product stored in bf16 (x16 and bias as
    /// <see cref="GeluForward(ArrayView{ushort}, ArrayView{float}, ArrayView{float})"/>'s; no fp32 output).
    /// </summary>
    public void GeluForwardBf16(ArrayView<ushort> x16, ArrayView<float> bias, ArrayView<ushort> y16)
    {
        Check(y16.Length >= x16.Length, "y16 is shorter than x");
        int width = CheckBiasRows(x16, bias);
        (_geluBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, int, int>(
            ElementKernels.GeluForwardBf16))(ElementsPerThread.Threads(x16.Length), x16, bias, y16, width, (int)x16.Length);
    }

    /// <summary>
    /// <see cref="GeluBackward(ArrayView{ushort}, ArrayView{float}, ArrayView{ushort}, ArrayView{float})"/> (fc1's product and
    /// fc2's input gradient stored in bf16) written only as bf16 (dx16, fc1's backward operand; the fp32 dx is not
    /// stored; dx16 may be dy16, each value read before its own store), with fc1's bias gradient dBias += the column
    /// sums of dx, the bits of <see cref="ColumnSumsByChunks"/> (partials as there).
    /// </summary>
    public void GeluBackwardBf16WithBiasGradient(ArrayView<ushort> x16, ArrayView<float> bias, ArrayView<ushort> dy16, ArrayView<ushort> dx16,
        ArrayView<float> partials, ArrayView<float> dBias)
    {
        Check(dy16.Length >= x16.Length && dx16.Length >= x16.Length, "dy and dx16 must be as long as x");
        int width = CheckBiasRows(x16, bias), rows = (int)(x16.Length / width), chunks = BiasChunks(rows);
        Check(dBias.Length >= width && partials.Length >= (long)chunks * width && (long)chunks * width <= int.MaxValue, "dBias or partials is too short");
        (_geluBackwardBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>,
            ArrayView<float>, int, int, int>(ElementKernels.GeluBackwardBf16Columns))(chunks * width, x16, bias, dy16, dx16, partials, width,
            rows, BiasChunkRows);
        AddColumnPartials(partials, dBias, width, chunks);
    }

    /// <summary>
    /// <see cref="GatedResidualBackward"/> with dBranch written only as bf16 (dBranch16, the branch's linear backward
    /// operand; the fp32 dBranch is not stored), and the branch's bias gradient dBias (d) += the column sums of dBranch,
    /// the bits of <see cref="ColumnSumsByChunks"/> (partials as there).
    /// </summary>
    public void GatedResidualBackwardBf16WithBiasGradient(ArrayView<float> dy, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate,
        ArrayView<float> dGate, ArrayView<ushort> dBranch16, ArrayView<float> partials, ArrayView<float> dBias, int d, int rowsPerImage, int modStride)
    {
        GatedResidualGateGradient(dy, branch, bias, gate, dGate, dBranch16.Length, d, rowsPerImage, modStride);
        int rows = (int)(dy.Length / d), chunks = BiasChunks(rows);
        Check(dBias.Length >= d && partials.Length >= (long)chunks * d, "dBias or partials is too short");
        (_branchGradBf16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>,
            int, int, int, int, int>(BackwardKernels.GatedResidualBranchGradientBf16Columns))(chunks * d, dy, gate, dBranch16, partials, d, rowsPerImage, modStride,
            rows, BiasChunkRows);
        AddColumnPartials(partials, dBias, d, chunks);
    }
}
