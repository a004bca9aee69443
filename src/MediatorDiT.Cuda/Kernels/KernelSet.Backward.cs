using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Nn;

namespace MediatorDiT.Cuda.Kernels;

/// <summary>The launchers of the backward-pass kernels (<see cref="AttentionBackwardKernels"/>, <see cref="MediatorBiasBackwardKernels"/>, <see cref="BackwardKernels"/>).</summary>
internal sealed partial class KernelSet
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _fullDelta;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>? _fullDq, _fullDkv;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>? _medQuerySoftmax, _medKeySoftmax, _medTokens, _medDq;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>? _medDVm, _medDk, _medDwcInputAdd;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>? _medDwcPerImage;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, MediatorShape>? _medPoolAdd;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>? _medDv;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _dwcParams;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _sumImages, _transpose;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int>? _resizeBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _axisRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _axisCols, _axisRowsPerMediator;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>? _axisColsPerMediator;

    /// <summary>
    /// Full attention's core backward, flash style: from qkv (B*N, 3D), the per-head outputs O and their gradient dO
    /// (B*N, D) and the forward's row log-sum-exp lse (B, H, N) (natural log of the sum of exp of the scaled logits),
    /// dqkv (B*N, 3D) is overwritten; delta (B, H, N) is scratch. No N x N matrix is stored.
    /// </summary>
    public void FullAttentionBackward(ArrayView<float> qkv, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> lse, ArrayView<float> delta,
        ArrayView<float> dqkv, int batch, int tokens, int heads, int headDim, float scale)
    {
        long rows = (long)batch * tokens, d = (long)heads * headDim, heads3 = (long)batch * heads * tokens;
        Check(batch >= 1 && tokens >= 1 && heads >= 1 && headDim >= 1, "batch, tokens, heads and headDim must be positive");
        Check(qkv.Length >= rows * 3 * d && dqkv.Length >= rows * 3 * d && o.Length >= rows * d && dO.Length >= rows * d, "qkv, dqkv, o or dO is too short");
        Check(lse.Length >= heads3 && delta.Length >= heads3, "lse and delta need (B, H, N)");
        CheckHeadDim(headDim);
        int threads = (int)heads3;
        FullAttentionDelta(o, dO, delta, batch, tokens, heads, headDim);
        (_fullDq ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>(
            AttentionBackwardKernels.FullAttentionQueryGradient))(threads, qkv, dO, lse, delta, dqkv, tokens, heads, headDim, scale);
        (_fullDkv ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>(
            AttentionBackwardKernels.FullAttentionKeyValueGradient))(threads, qkv, dO, lse, delta, dqkv, tokens, heads, headDim, scale);
    }

    /// <summary>
    /// Mediator attention's core backward over all images and heads (Nn.MediatorCoreKernel.Backward per (b, h)):
    /// dqkv, dS1, dS2 and the per-image tap and bias gradients dTaps (B, 10, D) overwritten; dVm and dT are scratch.
    /// </summary>
    public void MediatorCoreBackward(in MediatorBackwardViews v, int batch, MediatorShape m)
    {
        long bh = (long)batch * m.Heads, rows = (long)batch * m.Tokens;
        Check(batch >= 1 && m.Heads >= 1 && m.HeadDim >= 1 && m.Tokens >= 1 && m.Mediators >= 1, "the shape must be positive");
        Check(v.Qkv.Length >= rows * 3 * m.Dim && v.DQkv.Length >= rows * 3 * m.Dim && v.DO.Length >= rows * m.Dim, "qkv, dqkv or dO is too short");
        Check(v.Tokens.Length >= (long)batch * m.Mediators * m.Dim && v.Taps.Length >= 9L * m.Dim && v.DTaps.Length >= batch * 10L * m.Dim, "tokens, taps or dTaps is too short");
        long maps = bh * m.Mediators * m.Tokens, small = bh * m.Mediators * m.HeadDim;
        Check(v.A1.Length >= maps && v.A2.Length >= maps && v.DS1.Length >= maps && v.DS2.Length >= maps, "A1, A2, dS1 or dS2 is too short");
        Check(v.Vm.Length >= small && v.DVm.Length >= small && v.DT.Length >= small, "Vm, dVm or dT is too short");
        (_medQuerySoftmax ??= LoadMediator4(AttentionBackwardKernels.MediatorQuerySoftmaxBackward))((int)rows * m.Heads, v.DO, v.Vm, v.A2, v.DS2, m);
        (_medDVm ??= LoadMediator3(AttentionBackwardKernels.MediatorValueGradient))((int)small, v.DO, v.A2, v.DVm, m);
        (_medKeySoftmax ??= LoadMediator4(AttentionBackwardKernels.MediatorKeySoftmaxBackward))((int)(bh * m.Mediators), v.Qkv, v.DVm, v.A1, v.DS1, m);
        (_medTokens ??= LoadMediator4(AttentionBackwardKernels.MediatorTokenGradient))((int)small, v.Qkv, v.DS1, v.DS2, v.DT, m);
        int perChannel = (int)(rows * m.Dim);
        (_medDq ??= LoadMediator4(AttentionBackwardKernels.MediatorQueryGradient))(perChannel, v.Tokens, v.DS2, v.DT, v.DQkv, m);
        (_medDk ??= LoadMediator3(AttentionBackwardKernels.MediatorKeyGradient))(perChannel, v.Tokens, v.DS1, v.DQkv, m);
        (_medDv ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>(
            AttentionBackwardKernels.MediatorValueInputGradient))(perChannel, v.DO, v.Taps, v.A1, v.DVm, v.DQkv, m);
        DepthwiseGradientsPerImage(v.Qkv, v.DO, v.DTaps, batch, m);
    }

    /// <summary>
    /// The depthwise conv's per-image tap and bias gradients dTaps (B, 10, D) from qkv's v (plus qkvBias's, when given)
    /// and dO, overwritten.
    /// </summary>
    public void DepthwiseGradientsPerImage(ArrayView<float> qkv, ArrayView<float> dO, ArrayView<float> dTaps, int batch, MediatorShape m,
        ArrayView<float> qkvBias = default)
    {
        long rows = (long)batch * m.Tokens;
        Check(qkv.Length >= rows * 3 * m.Dim && dO.Length >= rows * m.Dim && dTaps.Length >= batch * 10L * m.Dim, "qkv, dO or dTaps is too short");
        CheckQkvBias(qkvBias, m.Dim);
        (_medDwcPerImage ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape>(
            AttentionBackwardKernels.DepthwiseGradientsPerImage))(batch * 10 * m.Dim, qkv, qkvBias, dO, dTaps, m);
    }

    /// <summary>
    /// The non-product steps that finish the product-based mediator backward in dqkv (B*N, 3D): dq += the pooling's
    /// transpose of dT (B, H, n, hd), dv += the depthwise conv's input gradient from dO (B*N, D) and taps (9, D).
    /// </summary>
    public void MediatorPoolingAndDepthwiseGradients(ArrayView<float> dT, ArrayView<float> dO, ArrayView<float> taps, ArrayView<float> dqkv, int batch,
        MediatorShape m)
    {
        long rows = (long)batch * m.Tokens, perChannel = rows * m.Dim;
        Check(dqkv.Length >= rows * 3 * m.Dim && dO.Length >= perChannel && taps.Length >= 9L * m.Dim, "dqkv, dO or taps is too short");
        Check(dT.Length >= (long)batch * m.Heads * m.Mediators * m.HeadDim, "dT is too short");
        (_medPoolAdd ??= LoadMediator2(AttentionBackwardKernels.MediatorPoolingGradientAdd))((int)perChannel, dT, dqkv, m);
        (_medDwcInputAdd ??= LoadMediator3(AttentionBackwardKernels.DepthwiseInputGradientAdd))((int)perChannel, dO, taps, dqkv, m);
    }

    /// <summary>Row softmax backward in place over rows of n: dp = p (dp - sum(p dp)), no bias.</summary>
    public void SoftmaxBackward(ArrayView<float> p, ArrayView<float> dp, int n) => SoftmaxBackward(p, dp, default, n);

    /// <summary>The per-image tap and bias gradients (B, 10, D) added, image by image, to dwc.weight's (D, 1, 3, 3) and dwc.bias's (D) gradients.</summary>
    public void DepthwiseParameterGradients(ArrayView<float> dTaps, ArrayView<float> dWeight, ArrayView<float> dBias, int dim, int batch)
    {
        Check(dTaps.Length >= batch * 10L * dim && dWeight.Length >= 9L * dim && dBias.Length >= dim, "dTaps, dWeight or dBias is too short");
        (_dwcParams ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(
            AttentionBackwardKernels.DepthwiseParameterGradients))(dim * 10, dTaps, dWeight, dBias, dim, batch);
    }

    /// <summary>
    /// The position biases' gradients from dS1 (B, H, n, N) and dS2 (B, H, N, n), added to the parameters' gradients
    /// as MediatorAttention.AccumulateBiasGradients adds them (same bits): an_bias and na_bias (H, n, 7, 7) through the
    /// resize's transpose, ah_bias (H, n, G), aw_bias (H, n, G), ha_bias (H, G, n), wa_bias (H, G, n). The scratch
    /// buffers dBias1, dBias2 and resized hold H n N floats each.
    /// </summary>
    public void MediatorBiasGradients(ArrayView<float> dS1, ArrayView<float> dS2, ArrayView<float> dBias1, ArrayView<float> dBias2, ArrayView<float> resized,
        in MediatorBiasGradientViews grads, DeviceResizeTaps taps, int batch, int heads, int grid, int medGrid)
    {
        int n = medGrid * medGrid, N = grid * grid, map = heads * n * N;
        Check(taps.InSize == MediatorBiasSide && taps.OutSize == grid, "the resize taps must map 7 to the grid");
        Check(dS1.Length >= (long)batch * map && dS2.Length >= (long)batch * map, "dS1 or dS2 is too short");
        Check(dBias1.Length >= map && dBias2.Length >= map && resized.Length >= map, "a scratch buffer is too short");
        int side = MediatorBiasSide * MediatorBiasSide;
        Check(grads.An.Length >= (long)heads * n * side && grads.Na.Length >= (long)heads * n * side, "an_bias or na_bias gradient is too short");
        Check(grads.Ah.Length >= (long)heads * n * grid && grads.Aw.Length >= (long)heads * n * grid, "ah_bias or aw_bias gradient is too short");
        Check(grads.Ha.Length >= (long)heads * grid * n && grads.Wa.Length >= (long)heads * grid * n, "ha_bias or wa_bias gradient is too short");
        var sum = _sumImages ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(MediatorBiasBackwardKernels.SumOverImages);
        sum(map, dS1, dBias1, map, batch);
        sum(map, dS2, dBias2, map, batch);
        BilinearResizeBackward(dBias1, grads.An, taps, heads * n);
        (_axisRows ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(MediatorBiasBackwardKernels.AxisRowGradients))(
            heads * n * grid, dBias1, grads.Ah, grid);
        (_axisCols ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(MediatorBiasBackwardKernels.AxisColumnGradients))(
            heads * n * grid, dBias1, grads.Aw, grid, grid);
        (_axisRowsPerMediator ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(
            MediatorBiasBackwardKernels.AxisRowGradientsPerMediator))(heads * grid * n, dBias2, grads.Ha, grid, n);
        (_axisColsPerMediator ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(
            MediatorBiasBackwardKernels.AxisColumnGradientsPerMediator))(heads * grid * n, dBias2, grads.Wa, grid, grid, n);
        // bias2's resized part is stored transposed (H, N, n): back to (H, n, N) before the resize's transpose.
        Transpose(dBias2.SubView(0, map), resized, N, n);
        BilinearResizeBackward(resized, grads.Na, taps, heads * n);
    }

    /// <summary>dst (count, cols, rows) = the transpose of each of src's count (rows, cols) matrices (count = src's length / (rows cols)).</summary>
    public void Transpose(ArrayView<float> src, ArrayView<float> dst, int rows, int cols)
    {
        Check(rows >= 1 && cols >= 1 && src.Length % ((long)rows * cols) == 0 && dst.Length >= src.Length, "src must hold whole (rows, cols) matrices, dst as many");
        (_transpose ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(MediatorBiasBackwardKernels.Transpose))(
            (int)src.Length, src, dst, rows, cols);
    }

    /// <summary>The side of the mediator position biases' parameter maps (an_bias, na_bias: (H, n, 7, 7)).</summary>
    public const int MediatorBiasSide = 7;

    /// <summary>dx (planes, in, in) += the bilinear resize's transpose applied to dy (planes, out, out).</summary>
    public void BilinearResizeBackward(ArrayView<float> dy, ArrayView<float> dx, DeviceResizeTaps taps, int planes)
    {
        int i = taps.InSize, o = taps.OutSize;
        Check(dy.Length >= (long)planes * o * o && dx.Length >= (long)planes * i * i, "dy or dx is too short");
        (_resizeBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, int, int, int, int>(MediatorBiasBackwardKernels.BilinearResizeBackward))(
            planes * i * i, dy, dx, taps.Indices, taps.Weights, taps.Indices, taps.Weights, i, i, o, o);
    }

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape> LoadMediator4(
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape> kernel) =>
        _accelerator.LoadAutoGroupedStreamKernel(kernel);

    private Action<Index1D, ArrayView<float>, ArrayView<float>, MediatorShape> LoadMediator2(
        Action<Index1D, ArrayView<float>, ArrayView<float>, MediatorShape> kernel) =>
        _accelerator.LoadAutoGroupedStreamKernel(kernel);

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape> LoadMediator3(
        Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, MediatorShape> kernel) =>
        _accelerator.LoadAutoGroupedStreamKernel(kernel);

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int>? _adaLnDx;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int,
        int>? _adaLnDxWarp;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>? _adaLnMod;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _branchGrad;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>? _gateGrad;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _siluBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _softmaxBackward;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int>? _softmaxBackwardWarp;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _columnSums, _addColumnPartials;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>? _columnPartials;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>? _unpatchifyBackward, _patchesToImage;
    private Action<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>? _labelTable;

    /// <summary>
    /// adaLN's backward over g = dL/dy (rows, d): dx (overwritten, or added to when <paramref name="accumulate"/>) from
    /// the forward's xhat and stats (rows, 2), and the per-image dShift, dScale added to. scale, dShift and dScale are
    /// (B, d) rows <paramref name="modStride"/> floats apart (views starting at their column of the modulation).
    /// With <paramref name="residual"/> (and accumulate) dx = residual + the gradient, the bits of copying the residual
    /// into dx first and adding to it, without the copy. With <paramref name="xhatFromInput"/> <paramref name="xhat"/>
    /// holds the LayerNorm's input x, and xhat = (x - mean) rstd is made again from stats as the forward made it (its
    /// bits), so the forward need not write or keep it.
    /// </summary>
    public void AdaLayerNormBackward(ArrayView<float> g, ArrayView<float> xhat, ArrayView<float> scale, ArrayView<float> stats,
        ArrayView<float> dShift, ArrayView<float> dScale, ArrayView<float> dx, int d, int rowsPerImage, int modStride, bool accumulate,
        ArrayView<float> residual = default, bool xhatFromInput = false)
    {
        Check(d >= 1 && rowsPerImage >= 1 && modStride >= d && g.Length % d == 0, "g must hold whole rows of d channels, modStride at least d");
        int rows = (int)(g.Length / d), images = (rows + rowsPerImage - 1) / rowsPerImage;
        Check(rows % rowsPerImage == 0, "g must hold whole images");
        long modLength = (long)(images - 1) * modStride + d;
        Check(xhat.Length >= g.Length && dx.Length >= g.Length && stats.Length >= 2L * rows, "xhat, dx or stats is too short");
        Check(scale.Length >= modLength && dShift.Length >= modLength && dScale.Length >= modLength, "scale, dShift or dScale is too short");
        Check(residual.Length == 0 || (accumulate && residual.Length >= g.Length), "a residual is added only when accumulating, and must cover g");
        var addend = residual.Length > 0 ? residual : dx;
        int fromInput = xhatFromInput ? 1 : 0;
        if (WarpRows)
            (_adaLnDxWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, int>(WarpRowKernels.AdaLayerNormInputGradient))(RowLaunch(rows), g, xhat, scale, stats, addend, dx, rows, d, rowsPerImage,
                modStride, accumulate ? 1 : 0, fromInput);
        else
            (_adaLnDx ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, int, int>(BackwardKernels.AdaLayerNormInputGradient))(rows, g, xhat, scale, stats, addend, dx, d, rowsPerImage, modStride,
                accumulate ? 1 : 0, fromInput);
        (_adaLnMod ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int,
            int, int>(BackwardKernels.AdaLayerNormModulationGradient))(images * d, g, xhat, stats, dShift, dScale, d, rowsPerImage, modStride, fromInput);
    }

    /// <summary>
    /// The gated residual's backward over dy (rows, d): dGate (B, d; rows modStride apart) added to, from the branch
    /// before its bias (d) as <see cref="GatedResidualForward"/> read it, then dBranch = dy gate (dBranch may be dy).
    /// </summary>
    public void GatedResidualBackward(ArrayView<float> dy, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> dGate,
        ArrayView<float> dBranch, int d, int rowsPerImage, int modStride)
    {
        GatedResidualGateGradient(dy, branch, bias, gate, dGate, dBranch.Length, d, rowsPerImage, modStride);
        (_branchGrad ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(
            BackwardKernels.GatedResidualBranchGradient))((int)dy.Length, dy, gate, dBranch, d, rowsPerImage, modStride);
    }

    /// <summary>The gated residual backward's first step, dGate added to, after checking every view the backward uses.</summary>
    private void GatedResidualGateGradient(ArrayView<float> dy, ArrayView<float> branch, ArrayView<float> bias, ArrayView<float> gate, ArrayView<float> dGate,
        long dBranchLength, int d, int rowsPerImage, int modStride)
    {
        Check(bias.Length >= d, "the branch's bias must hold d values");
        Check(d >= 1 && rowsPerImage >= 1 && modStride >= d && dy.Length % (d * (long)rowsPerImage) == 0, "dy must hold whole images of rows of d channels");
        int images = (int)(dy.Length / d / rowsPerImage);
        long modLength = (long)(images - 1) * modStride + d;
        Check(branch.Length >= dy.Length && dBranchLength >= dy.Length && gate.Length >= modLength && dGate.Length >= modLength, "a buffer is too short");
        (_gateGrad ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(
            BackwardKernels.GatedResidualGateGradient))(images * d, dy, branch, bias, dGate, d, rowsPerImage, modStride);
    }

    /// <summary>dx = dy silu'(x) over x's length (dx may be dy).</summary>
    public void SiluBackward(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx)
    {
        Check(dy.Length >= x.Length && dx.Length >= x.Length, "dy and dx must be as long as x");
        (_siluBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardKernels.SiluBackward))(
            (int)x.Length, x, dy, dx);
    }

    /// <summary>
    /// Row softmax backward in place on dp (rows, n) from the probabilities p; when the forward added a shared bias (n),
    /// its gradient, the result's column sums, is added to <paramref name="dBias"/> (pass an empty view for none).
    /// </summary>
    public void SoftmaxBackward(ArrayView<float> p, ArrayView<float> dp, ArrayView<float> dBias, int n)
    {
        Check(n >= 1 && dp.Length % n == 0 && p.Length >= dp.Length, "dp must hold whole rows of n, p as many");
        int rows = (int)(dp.Length / n);
        if (WarpRows)
            (_softmaxBackwardWarp ??= _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(WarpRowKernels.SoftmaxBackward))(
                RowLaunch(rows), p, dp, rows, n);
        else
            (_softmaxBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(BackwardKernels.SoftmaxBackward))(rows, p, dp, n);
        if (dBias.Length > 0) ColumnSums(dp, dBias, n);
    }

    /// <summary>The rows of one chunk of <see cref="ColumnSumsByChunks"/>.</summary>
    public const int BiasChunkRows = 64;

    /// <summary>The chunks of <paramref name="rows"/> rows: <see cref="ColumnSumsByChunks"/>'s partials hold this many rows of columns.</summary>
    public static int BiasChunks(long rows) => (int)((rows + BiasChunkRows - 1) / BiasChunkRows);

    /// <summary>
    /// dst (cols) += the column sums of x (rows, cols), summed by chunks of <see cref="BiasChunkRows"/> rows in row order,
    /// then the chunks in order (partials holds <see cref="BiasChunks"/> x cols floats): the bias gradient of proj, fc1
    /// and fc2, whose output-gradient kernels can sum their chunks as they write (the bf16 kernels give these bits).
    /// </summary>
    public void ColumnSumsByChunks(ArrayView<float> x, ArrayView<float> partials, ArrayView<float> dst, int cols)
    {
        Check(cols >= 1 && x.Length % cols == 0 && dst.Length >= cols, "x must hold whole rows of cols, dst cols");
        int rows = (int)(x.Length / cols), chunks = BiasChunks(rows);
        Check(partials.Length >= (long)chunks * cols && (long)chunks * cols <= int.MaxValue, "partials is too short");
        (_columnPartials ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(BackwardKernels.ColumnPartials))(
            chunks * cols, x, partials, rows, cols, BiasChunkRows);
        AddColumnPartials(partials, dst, cols, chunks);
    }

    /// <summary>dst (cols) += the partials' (chunks, cols) columns summed over the chunks in order.</summary>
    private void AddColumnPartials(ArrayView<float> partials, ArrayView<float> dst, int cols, int chunks) =>
        (_addColumnPartials ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(BackwardKernels.AddColumnPartials))(
            cols, partials, dst, cols, chunks);

    /// <summary>dst (cols) += the column sums of x (rows, cols) in row order: a bias gradient.</summary>
    public void ColumnSums(ArrayView<float> x, ArrayView<float> dst, int cols)
    {
        Check(cols >= 1 && x.Length % cols == 0 && dst.Length >= cols, "x must hold whole rows of cols, dst cols");
        (_columnSums ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(BackwardKernels.ColumnSums))(
            cols, x, dst, (int)(x.Length / cols), cols);
    }

    /// <summary>dTokens (B*N, p p C) = the transpose of unpatchify applied to dImage (B, keep, G p, G p); dropped channels get 0.</summary>
    public void UnpatchifyBackward(ArrayView<float> dImage, ArrayView<float> dTokens, int batch, int channels, int grid, int patch, int keep)
    {
        long tokens = (long)batch * grid * grid * patch * patch * channels;
        Check(keep >= 1 && keep <= channels && dTokens.Length >= tokens && dImage.Length >= (long)batch * keep * grid * patch * grid * patch, "dImage or dTokens is too short");
        (_unpatchifyBackward ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(
            BackwardKernels.UnpatchifyBackward))((int)tokens, dImage, dTokens, channels, grid, patch, keep);
    }

    /// <summary>dx (B, C, H, W) = the transpose of the patch embedding's im2col applied to dCols (B*N, C p p).</summary>
    public void PatchesToImage(ArrayView<float> dCols, ArrayView<float> dx, int batch, int channels, int height, int width, int patch)
    {
        long pixels = (long)batch * channels * height * width;
        Check(height % patch == 0 && width % patch == 0 && dx.Length >= pixels && dCols.Length >= pixels, "the image must hold whole patches; dx or dCols is too short");
        (_patchesToImage ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(
            BackwardKernels.PatchesToImage))((int)pixels, dCols, dx, channels, height, width, patch);
    }

    /// <summary>dTable (rows, d) += dOut (B, d) row by row at each image's label, in image order.</summary>
    public void LabelTableGradient(ArrayView<int> labels, ArrayView<float> dOut, ArrayView<float> dTable, int d)
    {
        int images = (int)labels.Length;
        Check(d >= 1 && dTable.Length % d == 0 && dOut.Length >= (long)images * d, "dTable must hold whole rows of d, dOut one per label");
        (_labelTable ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>(
            BackwardKernels.LabelTableGradient))((int)dTable.Length, labels, dOut, dTable, d, images);
    }
}

/// <summary>The device buffers of <see cref="KernelSet.MediatorCoreBackward"/>, in the CPU layer's layouts.</summary>
/// <param name="Qkv">the forward's qkv (B*N, 3D)</param>
/// <param name="Tokens">the forward's mediator tokens T (B, n, D)</param>
/// <param name="A1">the forward's A1 (B, H, n, N)</param>
/// <param name="A2">the forward's A2 (B, H, N, n)</param>
/// <param name="Vm">the forward's Vm (B, H, n, hd)</param>
/// <param name="Taps">the depthwise taps (9, D)</param>
/// <param name="DO">dL/d(per-head outputs) (B*N, D)</param>
/// <param name="DQkv">dL/dqkv (B*N, 3D), overwritten</param>
/// <param name="DS1">dL/d(logits of A1) (B, H, n, N), overwritten</param>
/// <param name="DS2">dL/d(logits of A2) (B, H, N, n), overwritten</param>
/// <param name="DTaps">per-image tap and bias gradients (B, 10, D), overwritten</param>
/// <param name="DVm">scratch (B, H, n, hd)</param>
/// <param name="DT">scratch (B, H, n, hd)</param>
internal readonly record struct MediatorBackwardViews(ArrayView<float> Qkv, ArrayView<float> Tokens, ArrayView<float> A1, ArrayView<float> A2,
    ArrayView<float> Vm, ArrayView<float> Taps, ArrayView<float> DO, ArrayView<float> DQkv, ArrayView<float> DS1, ArrayView<float> DS2,
    ArrayView<float> DTaps, ArrayView<float> DVm, ArrayView<float> DT);

/// <summary>The gradients of mediator attention's six position-bias parameters, added to by <see cref="KernelSet.MediatorBiasGradients"/>.</summary>
internal readonly record struct MediatorBiasGradientViews(ArrayView<float> An, ArrayView<float> Na, ArrayView<float> Ah, ArrayView<float> Aw,
    ArrayView<float> Ha, ArrayView<float> Wa);

/// <summary>
/// Nn.BilinearResize's taps for one square resize, on the device: per output index the two source indices and their
/// weights, computed on the host by the CPU code so the device uses the same bits.
/// </summary>
internal sealed class DeviceResizeTaps : IDisposable
{
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _indices;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _weights;

    public DeviceResizeTaps(Accelerator accelerator, int inSize, int outSize)
    {
        InSize = inSize;
        OutSize = outSize;
        var taps = BilinearResize.Taps(inSize, outSize);
        var indices = new int[2 * outSize];
        var weights = new float[2 * outSize];
        for (int d = 0; d < outSize; d++)
        {
            (indices[2 * d], indices[2 * d + 1]) = (taps[d].I0, taps[d].I1);
            (weights[2 * d], weights[2 * d + 1]) = (taps[d].W0, taps[d].W1);
        }
        _indices = accelerator.Allocate1D(indices);
        _weights = accelerator.Allocate1D(weights);
    }

    public int InSize { get; }
    public int OutSize { get; }
    public ArrayView<int> Indices => _indices.View;
    public ArrayView<float> Weights => _weights.View;

    public void Dispose()
    {
        _indices.Dispose();
        _weights.Dispose();
    }
}
