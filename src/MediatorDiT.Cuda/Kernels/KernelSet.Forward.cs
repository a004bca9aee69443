using ILGPU;
using ILGPU.Runtime;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launchers of the forward kernels (<see cref="ForwardKernels"/>, <see cref="AttentionKernels"/>).</summary>
internal sealed partial class KernelSet
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, PatchGeometry>? _patchify, _unpatchify;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _repeatRow, _addRepeated;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int>? _labelEmbed;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>? _splitModulation;
    private Action<Index1D, ArrayView<float>, int, int, int, float>? _guidance;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry>? _flash, _keyLogits, _gather, _queryLogits, _readBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry>? _pool;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry>? _dwc;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>,
        AttentionGeometry, int>? _dwcFromHeads;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _softmaxTable;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int>? _softmaxTableWarp;

    /// <summary>cols (B*N, C p^2) = the patches of x (B, C, S, S), B = <paramref name="batch"/>.</summary>
    public void Patchify(ArrayView<float> x, ArrayView<float> cols, PatchGeometry g, int batch)
    {
        long size = (long)g.Grid * g.Patch, n = (long)batch * g.Grid * g.Grid * g.Channels * g.Patch * g.Patch;
        Check(g.Channels >= 1 && g.Patch >= 1 && g.Grid >= 1 && batch >= 0, "the patch geometry must be positive");
        Check(x.Length >= batch * g.Channels * size * size && cols.Length >= n, "x or cols is too short for the batch");
        (_patchify ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchGeometry>(ForwardKernels.Patchify))(
            (int)n, x, cols, g);
    }

    /// <summary>image (B, Keep, S, S) = the first Keep channels of tokens (B*N, p^2 C) put back on the grid.</summary>
    public void Unpatchify(ArrayView<float> tokens, ArrayView<float> image, PatchGeometry g, int batch)
    {
        long size = (long)g.Grid * g.Patch, n = (long)batch * g.Keep * size * size;
        Check(g.Keep >= 1 && g.Keep <= g.Channels && batch >= 0, "keep must be between 1 and the token channels");
        Check(tokens.Length >= (long)batch * g.Grid * g.Grid * g.Patch * g.Patch * g.Channels && image.Length >= n, "tokens or image is too short");
        (_unpatchify ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchGeometry>(ForwardKernels.Unpatchify))(
            (int)n, tokens, image, g);
    }

    /// <summary>y (rows, width) = bias (width) in every row, over y's length.</summary>
    public void RepeatRow(ArrayView<float> bias, ArrayView<float> y, int width)
    {
        Check(width >= 1 && bias.Length >= width && y.Length % width == 0, "y must hold whole rows of the bias's width");
        (_repeatRow ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(ForwardKernels.RepeatRow))(
            (int)y.Length, bias, y, width);
    }

    /// <summary>x += table repeated every <paramref name="period"/> floats, over x's length.</summary>
    public void AddRepeated(ArrayView<float> x, ArrayView<float> table, int period)
    {
        Check(period >= 1 && table.Length >= period && x.Length % period == 0, "x must hold whole periods of the table");
        (_addRepeated ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(ForwardKernels.AddRepeated))(
            (int)x.Length, x, table, period);
    }

    /// <summary>c (B, D) = table[labels] + temb; the labels must be rows of the table (the caller checks them on the host).</summary>
    public void LabelEmbed(ArrayView<float> table, ArrayView<int> labels, ArrayView<float> temb, ArrayView<float> c, int d)
    {
        long n = labels.Length * d;
        Check(d >= 1 && temb.Length >= n && c.Length >= n, "temb or c is too short for the labels");
        (_labelEmbed ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int>(
            ForwardKernels.LabelEmbed))((int)n, table, labels, temb, c, d);
    }

    /// <summary>chunks (count, B, D) = the count column blocks of mod (B, count D).</summary>
    public void SplitModulation(ArrayView<float> mod, ArrayView<float> chunks, int batch, int d, int count)
    {
        long n = (long)batch * d * count;
        Check(batch >= 0 && d >= 1 && count >= 1 && mod.Length >= n && chunks.Length >= n, "mod or chunks is too short");
        (_splitModulation ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(
            ForwardKernels.SplitModulation))((int)n, mod, chunks, batch, d, count);
    }

    /// <summary>Guidance on the first <paramref name="guided"/> floats of each of output's 2 half rows of per floats.</summary>
    public void Guidance(ArrayView<float> output, int half, int per, int guided, float scale)
    {
        Check(half >= 0 && guided >= 0 && guided <= per && output.Length >= 2L * half * per, "output must hold both halves and guided <= per");
        if (half == 0 || guided == 0) return;
        (_guidance ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, int, float>(ForwardKernels.Guidance))(
            half * guided, output, half, per, guided, scale);
    }

    /// <summary>o (B*N, D) = full attention of qkv (B*N, 3D); lse (B, H, N) its row log-sum-exps.</summary>
    public void FlashAttention(ArrayView<float> qkv, ArrayView<float> o, ArrayView<float> lse, AttentionGeometry g)
    {
        long rows = (long)g.Batch * g.Tokens;
        Check(qkv.Length >= rows * 3 * g.Dim && o.Length >= rows * g.Dim && lse.Length >= rows * g.Heads, "qkv, o or lse is too short");
        CheckHeadDim(g.HeadDim);
        (_flash ??= LoadAttention(AttentionKernels.FlashAttention))((int)(rows * g.Heads), qkv, o, lse, g);
    }

    /// <summary>
    /// Mediator attention's core: tokens T (B, n, D), A1 (B, H, n, N), Vm (B, H, n, hd), A2 (B, H, N, n) and
    /// o (B*N, D) = A2 Vm + dwc(v), from qkv (B*N, 3D), the biases bias1 (H, n, N) and bias2 (H, N, n), and the
    /// depthwise conv's weight (D, 1, 3, 3) and bias (D).
    /// </summary>
    public void MediatorAttention(ArrayView<float> qkv, ArrayView<float> bias1, ArrayView<float> bias2, ArrayView<float> dwcWeight,
        ArrayView<float> dwcBias, ArrayView<float> tokens, ArrayView<float> a1, ArrayView<float> vm, ArrayView<float> a2, ArrayView<float> o,
        AttentionGeometry g)
    {
        long rows = (long)g.Batch * g.Tokens, d = g.Dim, maps = (long)g.Batch * g.Heads * g.Mediators * g.Tokens;
        Check(qkv.Length >= rows * 3 * d && o.Length >= rows * d && tokens.Length >= (long)g.Batch * g.Mediators * d, "qkv, o or tokens is too short");
        Check(a1.Length >= maps && a2.Length >= maps && vm.Length >= (long)g.Batch * g.Heads * g.Mediators * g.HeadDim, "a1, a2 or vm is too short");
        Check(bias1.Length >= maps / g.Batch && bias2.Length >= maps / g.Batch && dwcWeight.Length >= 9 * d && dwcBias.Length >= d,
            "a bias table or the depthwise conv's weight is too short");
        MediatorPool(qkv, tokens, g);
        (_keyLogits ??= LoadAttention(AttentionKernels.MediatorKeyLogits))((int)maps, qkv, tokens, a1, g);
        SoftmaxRowsWithBiasTable(a1, bias1, g.Batch * g.Heads * g.Mediators, g.Tokens, g.Heads * g.Mediators);
        (_gather ??= LoadAttention(AttentionKernels.MediatorGather))(g.Batch * g.Heads * g.Mediators * g.HeadDim, a1, qkv, vm, g);
        (_queryLogits ??= LoadAttention(AttentionKernels.MediatorQueryLogits))((int)maps, qkv, tokens, a2, g);
        SoftmaxRowsWithBiasTable(a2, bias2, g.Batch * g.Heads * g.Tokens, g.Mediators, g.Heads * g.Tokens);
        (_readBack ??= LoadAttention(AttentionKernels.MediatorReadBack))((int)(rows * d), a2, vm, o, g);
        DepthwiseConvAdd(qkv, dwcWeight, dwcBias, o, g);
    }

    /// <summary>
    /// The mediator tokens T (B, n, D): q of qkv (B*N, 3D) average-pooled over the grid, plus qkvBias (3D) added to
    /// each value read when given (qkv then holds the product alone).
    /// </summary>
    public void MediatorPool(ArrayView<float> qkv, ArrayView<float> tokens, AttentionGeometry g, ArrayView<float> qkvBias = default)
    {
        long cells = (long)g.Batch * g.Mediators * g.Dim;
        Check(qkv.Length >= (long)g.Batch * g.Tokens * 3 * g.Dim && tokens.Length >= cells, "qkv or tokens is too short");
        CheckQkvBias(qkvBias, g.Dim);
        (_pool ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry>(
            AttentionKernels.MediatorPool))((int)cells, qkv, qkvBias, tokens, g);
    }

    /// <summary>
    /// o (B*N, D) += the depthwise 3x3 conv of v (qkv's last D columns, plus qkvBias's when given) with weight
    /// (D, 1, 3, 3) and bias (D).
    /// </summary>
    public void DepthwiseConvAdd(ArrayView<float> qkv, ArrayView<float> dwcWeight, ArrayView<float> dwcBias, ArrayView<float> o, AttentionGeometry g,
        ArrayView<float> qkvBias = default)
    {
        long rows = (long)g.Batch * g.Tokens, d = g.Dim;
        Check(qkv.Length >= rows * 3 * d && o.Length >= rows * d && dwcWeight.Length >= 9 * d && dwcBias.Length >= d, "qkv, o or the depthwise conv's weight is too short");
        CheckQkvBias(qkvBias, g.Dim);
        (_dwc ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry>(
            AttentionKernels.DepthwiseConvAdd))((int)(rows * d), qkv, qkvBias, dwcWeight, dwcBias, o, g);
    }

    /// <summary>
    /// <see cref="FromHeadMajor"/> of the core's output oh (B, H, N, hd) into o (B*N, D) and then <see cref="DepthwiseConvAdd"/>,
    /// in one pass (the same bits); when <paramref name="o16"/> is given (as long as o) it also gets o's bf16 values, and
    /// o is then written only when <paramref name="floats"/>.
    /// </summary>
    public void DepthwiseConvAddFromHeads(ArrayView<float> qkv, ArrayView<float> dwcWeight, ArrayView<float> dwcBias, ArrayView<float> oh, ArrayView<float> o,
        AttentionGeometry g, ArrayView<float> qkvBias = default, ArrayView<ushort> o16 = default, bool floats = true)
    {
        long rows = (long)g.Batch * g.Tokens, d = g.Dim;
        Check(qkv.Length >= rows * 3 * d && o.Length >= rows * d && oh.Length >= rows * d && dwcWeight.Length >= 9 * d && dwcBias.Length >= d,
            "qkv, oh, o or the depthwise conv's weight is too short");
        Check(o16.Length == 0 || o16.Length >= rows * d, "o16 is shorter than o");
        CheckQkvBias(qkvBias, g.Dim);
        (_dwcFromHeads ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<ushort>, AttentionGeometry, int>(AttentionKernels.DepthwiseConvAddFromHeads))((int)(rows * d), qkv, qkvBias, dwcWeight, dwcBias, oh,
            o, o16, g, floats || o16.Length == 0 ? 1 : 0);
    }

    /// <summary>A bias added to qkv's values as they are read: empty, or one row of 3D.</summary>
    private static void CheckQkvBias(ArrayView<float> qkvBias, int d) =>
        Check(qkvBias.Length == 0 || qkvBias.Length == 3L * d, "a bias added to qkv's values holds 3D values");

    /// <summary>Softmax of each of x's <paramref name="rows"/> rows of n in place, row r plus bias row r mod biasRows of bias (biasRows, n).</summary>
    public void SoftmaxRowsWithBiasTable(ArrayView<float> x, ArrayView<float> bias, int rows, int n, int biasRows)
    {
        Check(rows >= 0 && n >= 1 && biasRows >= 1 && x.Length >= (long)rows * n && bias.Length >= (long)biasRows * n, "x or the bias table is too short");
        if (rows == 0) return;
        if (WarpRows)
            (_softmaxTableWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(WarpRowKernels.SoftmaxRowsWithBiasTable))(
                RowLaunch(rows), x, bias, rows, n, biasRows);
        else
            (_softmaxTable ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(
                AttentionKernels.SoftmaxRowsWithBiasTable))(rows, x, bias, n, biasRows);
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry> LoadAttention(
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionGeometry> kernel) =>
        _accelerator.LoadAutoGroupedStreamKernel(kernel);
}
