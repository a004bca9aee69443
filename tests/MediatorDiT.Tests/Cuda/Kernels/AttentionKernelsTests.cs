using MediatorDiT.Cuda.Kernels;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The attention device kernels on ILGPU's CPU accelerator against the CPU's plain kernels: flash attention against
/// the materialised softmax(s q k^T) v (ReferenceGemm and SoftmaxRows), mediator attention against
/// ReferenceMediatorCore per (image, head) on every tensor it saves (T, A1, Vm, A2, O). The dot products and sums run
/// in other orders than the CPU's, so they agree to rounding: 1e-5 of max(1, |value|).
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class AttentionKernelsTests(AcceleratorFixture device)
{
    [Theory]
    [InlineData(2, 3, 2, 5)]
    [InlineData(1, 4, 3, 8)]
    public void FlashAttention_MatchesTheMaterialisedSoftmax_AndSavesTheRowLogSumExp(int batch, int grid, int heads, int hd)
    {
        var g = new AttentionGeometry(batch, grid, heads, hd, 1, 1f / MathF.Sqrt(hd));
        int n = g.Tokens, d = g.Dim;
        var qkv = KernelData.Uniform(batch * n * 3 * d, 61, -2f, 2f);
        var o = new float[batch * n * d];
        var lse = new float[batch * heads * n];
        var s = new float[n * n];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            int q = b * n * 3 * d + h * hd;
            ReferenceGemm.Sgemm(false, true, n, n, hd, g.Scale, qkv.AsSpan(q), 3 * d, qkv.AsSpan(q + d), 3 * d, 0f, s, n);
            for (int r = 0; r < n; r++) lse[(b * heads + h) * n + r] = ReferenceSoftmaxRows.Forward(s.AsSpan(r * n, n), default);
            ReferenceGemm.Sgemm(false, false, n, hd, n, 1f, s, n, qkv.AsSpan(q + 2 * d), 3 * d, 0f, o.AsSpan(b * n * d + h * hd), d);
        }
        using var dqkv = device.Upload(qkv);
        using var dout = device.Accelerator.Allocate1D<float>(o.Length);
        using var dlse = device.Accelerator.Allocate1D<float>(lse.Length);
        device.Kernels.FlashAttention(dqkv.View, dout.View, dlse.View, g);
        AssertClose(o, device.Download(dout));
        AssertClose(lse, device.Download(dlse));
    }

    [Theory]
    [InlineData(2, 4, 2, 3, 2)]
    [InlineData(1, 5, 2, 4, 3)] // a grid the mediator grid does not divide: overlapping pooling bins
    public void MediatorAttention_MatchesTheReferenceCoreOnEverySavedTensor(int batch, int grid, int heads, int hd, int medGrid)
    {
        var g = new AttentionGeometry(batch, grid, heads, hd, medGrid, 1f / MathF.Sqrt(hd));
        int n = g.Tokens, d = g.Dim, m = g.Mediators;
        var qkv = KernelData.Uniform(batch * n * 3 * d, 62, -2f, 2f);
        var bias1 = KernelData.Uniform(heads * m * n, 63, -1f, 1f);
        var bias2 = KernelData.Uniform(heads * n * m, 64, -1f, 1f);
        var weight = KernelData.Uniform(9 * d, 65, -0.5f, 0.5f);
        var dwcBias = KernelData.Uniform(d, 66, -0.5f, 0.5f);
        var taps = new float[9 * d];
        DepthwiseConv3x3.TransposeWeight(weight, taps, d);
        var bias1T = new float[bias1.Length];
        ReferenceMediatorBiases.Transpose(bias1, bias1T, heads, m, n);

        float[] tokens = new float[batch * m * d], a1 = new float[batch * heads * m * n], a2 = new float[a1.Length];
        float[] vm = new float[batch * heads * m * hd], o = new float[batch * n * d];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            int bh = b * heads + h, q = b * n * 3 * d + h * hd;
            ReferenceMediatorCore.Forward(qkv.AsSpan(q), qkv.AsSpan(q + d), qkv.AsSpan(q + 2 * d), 3 * d, bias1T.AsSpan(h * n * m, n * m),
                bias2.AsSpan(h * n * m, n * m), taps.AsSpan(h * hd), d, dwcBias.AsSpan(h * hd, hd), tokens.AsSpan(b * m * d + h * hd), d,
                a1.AsSpan(bh * m * n, m * n), a2.AsSpan(bh * n * m, n * m), vm.AsSpan(bh * m * hd, m * hd), o.AsSpan(b * n * d + h * hd), d,
                grid, grid, medGrid, hd, g.Scale);
        }

        using var dqkv = device.Upload(qkv);
        using var db1 = device.Upload(bias1);
        using var db2 = device.Upload(bias2);
        using var dw = device.Upload(weight);
        using var dwb = device.Upload(dwcBias);
        using var dtokens = device.Accelerator.Allocate1D<float>(tokens.Length);
        using var da1 = device.Accelerator.Allocate1D<float>(a1.Length);
        using var da2 = device.Accelerator.Allocate1D<float>(a2.Length);
        using var dvm = device.Accelerator.Allocate1D<float>(vm.Length);
        using var dout = device.Accelerator.Allocate1D<float>(o.Length);
        device.Kernels.MediatorAttention(dqkv.View, db1.View, db2.View, dw.View, dwb.View, dtokens.View, da1.View, dvm.View, da2.View, dout.View, g);
        AssertClose(tokens, device.Download(dtokens));
        AssertClose(a1, device.Download(da1));
        AssertClose(vm, device.Download(dvm));
        AssertClose(a2, device.Download(da2));
        AssertClose(o, device.Download(dout));
    }

    [Fact]
    public void SoftmaxRowsWithBiasTable_MatchesTheReferenceRowSoftmax_WithEachRowsBias()
    {
        const int rows = 6, n = 7, biasRows = 3;
        var x = KernelData.Uniform(rows * n, 67);
        var bias = KernelData.Uniform(biasRows * n, 68, -1f, 1f);
        var expected = (float[])x.Clone();
        for (int r = 0; r < rows; r++) ReferenceSoftmaxRows.Forward(expected.AsSpan(r * n, n), bias.AsSpan(r % biasRows * n, n));
        using var dx = device.Upload(x);
        using var db = device.Upload(bias);
        device.Kernels.SoftmaxRowsWithBiasTable(dx.View, db.View, rows, n, biasRows);
        AssertClose(expected, device.Download(dx));
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs((double)actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs((double)expected[i]))))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class AttentionKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : AttentionKernelsTests(device);
