using ILGPU;
using ILGPU.Runtime;
using MediatorDiT.Cuda.Kernels;

namespace MediatorDiT.Tests.Cuda.Kernels;

/// <summary>
/// The kernels that write a bf16 product's operand themselves against their fp32 twins followed by the rounding
/// kernel, on the CPU accelerator: the bf16 outputs are the rounded fp32 outputs bit for bit, and every fp32 output the
/// fused kernel still writes is its twin's, bit for bit (the bias gradients summed as they write: those of
/// KernelSet.ColumnSumsByChunks over the fp32 twin's output). Row kernels both with a warp per row and a thread per row.
/// </summary>
[Collection(CpuAcceleratorCollection.Name)]
public class Bf16OperandKernelsTests(AcceleratorFixture device)
{
    // Rows of up to 8 warps' width take the tile softmax's register kernel, longer ones the general one: 32 on the
    // CPU accelerator's 4-lane warps, 256 (SiT's tokens) on 32-lane warps.
    public static TheoryData<bool, int, int> RowShapes => new()
    {
        { false, 3, 5 }, { false, 33, 7 }, { true, 3, 5 }, { true, 20, 6 }, { true, 32, 4 }, { true, 33, 7 }, { true, 130, 9 },
        { true, 256, 3 }, { true, 257, 3 },
    };

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void AdaLayerNormForwardBf16_IsTheRoundedForward(bool warpRows, int d, int rows)
    {
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var x = KernelData.Uniform(rows * d, 201, -3f, 3f);
        var shift = KernelData.Uniform(2 * d, 202, -1f, 1f);
        var scale = KernelData.Uniform(2 * d, 203, -1f, 1f);
        int rowsPerImage = (rows + 1) / 2;
        using var dx = device.Upload(x);
        using var dShift = device.Upload(shift);
        using var dScale = device.Upload(scale);
        using var xhat = Floats(rows * d);
        using var y = Floats(rows * d);
        using var stats = Floats(2 * rows);
        kernels.AdaLayerNormForward(dx.View, dShift.View, dScale.View, xhat.View, y.View, stats.View, d, rowsPerImage);
        var (expectedXhat, expectedStats, expected16) = (device.Download(xhat), device.Download(stats), Rounded(device.Download(y)));

        using var xhat2 = Floats(rows * d);
        using var scratch = Floats(rows * d);
        using var y16 = Halves(rows * d);
        using var stats2 = Floats(2 * rows);
        kernels.AdaLayerNormForwardBf16(dx.View, dShift.View, dScale.View, xhat2.View, scratch.View, y16.View, stats2.View, d, rowsPerImage);
        AssertSameHalves(expected16, Download(y16), "y16");
        device.AssertSameBits(expectedXhat, device.Download(xhat2));
        device.AssertSameBits(expectedStats, device.Download(stats2));

        // Without xhat (a block's LayerNorms: the backward makes it again): y16 and stats as before.
        using var y16b = Halves(rows * d);
        using var stats3 = Floats(2 * rows);
        kernels.AdaLayerNormForwardBf16(dx.View, dShift.View, dScale.View, default, scratch.View, y16b.View, stats3.View, d, rowsPerImage);
        AssertSameHalves(expected16, Download(y16b), "y16 without xhat");
        device.AssertSameBits(expectedStats, device.Download(stats3));
    }

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void TileSoftmaxBf16_IsTheRoundedSoftmax(bool warpRows, int n, int rows)
    {
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var logits = KernelData.Uniform(rows * n, 204, -6f, 6f);
        var tile = new AttentionTile(n, 1, 2, n - 1); // items of one row each, the last row of items 2 .. 2 + rows - 1
        using var s = device.Upload(logits);
        using var lse = Floats((2 + rows) * n);
        kernels.TileSoftmax(s.View, lse.View, rows, tile);
        var (expected16, expectedLse) = (Rounded(device.Download(s)), device.Download(lse));

        using var s2 = device.Upload(logits);
        using var lse2 = Floats((2 + rows) * n);
        using var p16 = Halves(rows * n);
        kernels.TileSoftmaxBf16(s2.View, p16.View, lse2.View, rows, tile);
        AssertSameHalves(expected16, Download(p16), "p16");
        device.AssertSameBits(expectedLse, device.Download(lse2));
    }

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void SoftmaxRowsWithBiasTableBf16_IsTheRoundedSoftmax_WithItsFloatsOnlyWhenKept(bool warpRows, int n, int rows)
    {
        // Mediator attention's softmaxes: row r plus bias row r mod 3.
        var kernels = warpRows ? device.WarpRowKernels : device.ThreadRowKernels;
        var logits = KernelData.Uniform(rows * n, 214, -6f, 6f);
        var bias = KernelData.Uniform(3 * n, 215, -1f, 1f);
        using var b = device.Upload(bias);
        using var x = device.Upload(logits);
        kernels.SoftmaxRowsWithBiasTable(x.View, b.View, rows, n, 3);
        var expected = device.Download(x);
        var expected16 = Rounded(expected);
        foreach (bool keepFloats in new[] { true, false })
        {
            using var x2 = device.Upload(logits);
            using var p16 = Halves(rows * n);
            kernels.SoftmaxRowsWithBiasTableBf16(x2.View, b.View, p16.View, rows, n, 3, keepFloats);
            AssertSameHalves(expected16, Download(p16), $"p16, floats kept {keepFloats}");
            // Kept: the probabilities' bits; else a warp per row leaves the logits (a thread per row always writes them).
            device.AssertSameBits(keepFloats || !warpRows ? expected : logits, device.Download(x2));
        }
    }

    [Fact]
    public void TileSoftmaxBackwardBf16_IsTheRoundedBackward()
    {
        const int n = 6, rows = 3, items = 2; // a tile of 2 items x 3 rows from row 2, of 4 items of 6 tokens
        var tile = new AttentionTile(n, rows, 1, 2);
        var logits = KernelData.Uniform(items * rows * n, 205, -4f, 4f);
        var upstream = KernelData.Uniform(items * rows * n, 206, -2f, 2f);
        var lse = KernelData.Uniform(4 * n, 207, 1f, 3f);
        var delta = KernelData.Uniform(4 * n, 208, -1f, 1f);
        using var dLse = device.Upload(lse);
        using var dDelta = device.Upload(delta);
        using var s = device.Upload(logits);
        using var dp = device.Upload(upstream);
        device.Kernels.TileSoftmaxBackward(s.View, dp.View, dLse.View, dDelta.View, items, tile);
        var (expectedP, expectedDs) = (Rounded(device.Download(s)), Rounded(device.Download(dp)));

        using var s2 = device.Upload(logits);
        using var dp2 = device.Upload(upstream);
        using var p16 = Halves(logits.Length);
        using var ds16 = Halves(logits.Length);
        device.Kernels.TileSoftmaxBackwardBf16(s2.View, dp2.View, dLse.View, dDelta.View, p16.View, ds16.View, items, tile);
        AssertSameHalves(expectedP, Download(p16), "p16");
        AssertSameHalves(expectedDs, Download(ds16), "ds16");
        device.AssertSameBits(logits, device.Download(s2)); // read, not written
    }

    [Fact]
    public void TileSoftmaxBackwardFromProbabilities_IsPTimesTheShiftedUpstreamAndItsBf16TwinItsRounding()
    {
        const int n = 7, rows = 3, items = 2; // a tile of 2 items x 3 rows from row 2, of 4 items of 7 tokens: 42 values, not a multiple of 4 threads' worth
        var tile = new AttentionTile(n, rows, 1, 2);
        var probabilities = KernelData.Uniform(items * rows * n, 209, 0f, 1f).Select(Bf16.Round).ToArray();
        var upstream = KernelData.Uniform(items * rows * n, 210, -2f, 2f);
        var delta = KernelData.Uniform(4 * n, 211, -1f, 1f);
        var expected = new float[upstream.Length];
        for (int i = 0; i < expected.Length; i++)
        {
            long row = tile.LseIndex(i / n); // item 1 + i / (rows n), row 2 + (i / n) % rows
            Assert.Equal((1 + i / (rows * n)) * n + 2 + i / n % rows, row);
            expected[i] = Bf16.Widen(probabilities[i]) * (upstream[i] - delta[row]);
        }
        using var p16 = device.Accelerator.Allocate1D(probabilities);
        using var dDelta = device.Upload(delta);
        using var dp = device.Upload(upstream);
        device.Kernels.TileSoftmaxBackwardFromProbabilities(p16.View, dp.View, dDelta.View, items, tile);
        device.AssertSameBits(expected, device.Download(dp));

        using var dp2 = device.Upload(upstream);
        using var ds16 = Halves(upstream.Length);
        device.Kernels.TileSoftmaxBackwardFromProbabilitiesBf16(p16.View, dp2.View, dDelta.View, ds16.View, items, tile);
        AssertSameHalves(Rounded(expected), Download(ds16), "ds16");
        device.AssertSameBits(upstream, device.Download(dp2)); // read, not written
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // qkv's bias added to v as the conv reads it
    public void DepthwiseConvAddFromHeads_IsTheMoveThenTheConv_WithTheRoundedOutput(bool qkvBias)
    {
        // 2 images of a 5 x 5 grid, 3 heads of 4 channels: the core's head-major output moved to rows, then the conv added.
        var g = new AttentionGeometry(Batch: 2, Grid: 5, Heads: 3, HeadDim: 4, MedGrid: 2, Scale: 0.5f);
        int rows = g.Batch * g.Tokens, d = g.Dim;
        using var qkv = device.Upload(KernelData.Uniform(rows * 3 * d, 221, -2f, 2f));
        using var bias = device.Upload(qkvBias ? KernelData.Uniform(3 * d, 222, -1f, 1f) : [0f]);
        var biasView = qkvBias ? bias.View : default;
        using var weight = device.Upload(KernelData.Uniform(9 * d, 223, -0.5f, 0.5f));
        using var dwcBias = device.Upload(KernelData.Uniform(d, 224, -0.5f, 0.5f));
        using var heads = device.Upload(KernelData.Uniform(rows * d, 225, -1f, 1f));
        using var o = Floats(rows * d);
        device.Kernels.FromHeadMajor(heads.View, o.View, g.Batch, new HeadLayout(g.Tokens, g.Heads, g.HeadDim, d, 0));
        device.Kernels.DepthwiseConvAdd(qkv.View, weight.View, dwcBias.View, o.View, g, biasView);
        var expected = device.Download(o);

        using var fused = device.Upload(KernelData.Uniform(rows * d, 226)); // stale values the kernel must overwrite
        using var fused16 = Halves(rows * d);
        device.Kernels.DepthwiseConvAddFromHeads(qkv.View, weight.View, dwcBias.View, heads.View, fused.View, g, biasView, fused16.View);
        device.AssertSameBits(expected, device.Download(fused));
        AssertSameHalves(Rounded(expected), Download(fused16), "o16");

        using var alone = Floats(rows * d);
        device.Kernels.DepthwiseConvAddFromHeads(qkv.View, weight.View, dwcBias.View, heads.View, alone.View, g, biasView);
        device.AssertSameBits(expected, device.Download(alone)); // without a bf16 copy: the same rows

        // A sampling forward's: the bf16 copy alone, the rows left as they were.
        var stale = KernelData.Uniform(rows * d, 227);
        using var untouched = device.Upload(stale);
        using var only16 = Halves(rows * d);
        device.Kernels.DepthwiseConvAddFromHeads(qkv.View, weight.View, dwcBias.View, heads.View, untouched.View, g, biasView, only16.View, floats: false);
        AssertSameHalves(Rounded(expected), Download(only16), "o16 alone");
        device.AssertSameBits(stale, device.Download(untouched));
    }

    [Fact]
    public void FromHeadMajorWithBf16_IsTheMoveWithItsRounding_TheRowsOnlyWhenAsked()
    {
        var layout = new HeadLayout(Tokens: 5, Heads: 3, HeadDim: 4, Ld: 3 * 12, Column: 24); // into the v part of qkv rows
        const int batch = 2;
        var heads = KernelData.Uniform(batch * 5 * 12, 228, -2f, 2f);
        var stale = KernelData.Uniform(batch * 5 * 36, 229);
        using var src = device.Upload(heads);
        using var moved = device.Upload(stale);
        device.Kernels.FromHeadMajor(src.View, moved.View, batch, layout);
        var expected = device.Download(moved);
        foreach (bool floats in new[] { true, false })
        {
            using var rows = device.Upload(stale);
            using var rows16 = Halves(batch * 5 * 36);
            device.Kernels.FromHeadMajorWithBf16(src.View, rows.View, rows16.View, batch, layout, floats);
            var halves = Download(rows16);
            // Only the moved columns get a bf16 value, each the rounding of the moved one.
            for (int i = 0; i < expected.Length; i++)
                Assert.Equal(i % 36 >= 24 ? Bf16.Round(expected[i]) : (ushort)0, halves[i]);
            device.AssertSameBits(floats ? expected : stale, device.Download(rows));
        }
    }

    [Fact]
    public void ToHeadMajorBf16_IsTheRoundedMove()
    {
        var layout = new HeadLayout(Tokens: 5, Heads: 3, HeadDim: 4, Ld: 3 * 12, Column: 12); // the k part of qkv rows
        const int batch = 2;
        var qkv = KernelData.Uniform(batch * 5 * 36, 209);
        using var src = device.Upload(qkv);
        using var dst = Floats(batch * 5 * 12);
        device.Kernels.ToHeadMajor(src.View, dst.View, batch, layout);
        using var dst16 = Halves(batch * 5 * 12);
        device.Kernels.ToHeadMajorBf16(src.View, dst16.View, batch, layout);
        AssertSameHalves(Rounded(device.Download(dst)), Download(dst16), "head-major bf16");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // dx16 written over dy16, as the training backward does
    public void GeluBf16Kernels_AreTheRoundedGelus_WithFc1sBiasGradient(bool inPlace)
    {
        // fc1's output and fc2's input gradient as bf16 products store them; 1,000 values in rows of 40: 25 rows, a
        // chunk of the bias gradient's 64 rows, and more than one when longer.
        foreach (int rows in new[] { 25, 130 })
        {
            const int width = 40;
            var x = KernelData.Uniform(rows * width, 210 + rows, -6f, 6f).Select(Bf16.Round).ToArray();
            var dy = KernelData.Uniform(rows * width, 211 + rows, -2f, 2f).Select(Bf16.Round).ToArray();
            var dBias0 = KernelData.Uniform(width, 218, -1f, 1f);
            using var dX = device.Accelerator.Allocate1D(x);
            using var bias = device.Upload(KernelData.Uniform(width, 216, -1f, 1f));
            using var y = Floats(x.Length);
            device.Kernels.GeluForward(dX.View, bias.View, y.View);
            using var y16 = Halves(x.Length);
            device.Kernels.GeluForwardBf16(dX.View, bias.View, y16.View);
            AssertSameHalves(Rounded(device.Download(y)), Download(y16), "gelu y16");

            using var partials = Floats(KernelSet.BiasChunks(rows) * width);
            using var g16 = device.Accelerator.Allocate1D(dy);
            using var g = Floats(x.Length);
            using var expectedBias = device.Upload(dBias0);
            device.Kernels.GeluBackward(dX.View, bias.View, g16.View, g.View);
            device.Kernels.ColumnSumsByChunks(g.View, partials.View, expectedBias.View, width);
            var expected = device.Download(g);
            using var upstream = device.Accelerator.Allocate1D(dy);
            using var separate = Halves(inPlace ? 0 : x.Length);
            var dx16 = inPlace ? upstream.View : separate.View;
            using var actualBias = device.Upload(dBias0);
            device.Kernels.GeluBackwardBf16WithBiasGradient(dX.View, bias.View, upstream.View, dx16, partials.View, actualBias.View);
            AssertSameHalves(Rounded(expected), dx16.GetAsArray1D(), "gelu dx16");
            device.AssertSameBits(device.Download(expectedBias), device.Download(actualBias));
            if (!inPlace) Assert.Equal(dy, upstream.GetAsArray1D()); // dy read, not written
        }
    }

    [Fact]
    public void GatedResidualBackwardBf16_IsTheRoundedBackward_WithTheBranchsBiasGradient()
    {
        const int d = 7, rowsPerImage = 50, images = 3, modStride = 6 * d, rows = images * rowsPerImage; // 150 rows: 3 chunks, the last part full
        var dy = KernelData.Uniform(rows * d, 212, -2f, 2f);
        var branch = KernelData.Uniform(dy.Length, 213, -2f, 2f);
        var modulation = KernelData.Uniform(images * modStride, 214, -1f, 1f);
        var dModulation = KernelData.Uniform(images * modStride, 215, -1f, 1f);
        var branchBias = KernelData.Uniform(d, 217, -1f, 1f);
        var dBias0 = KernelData.Uniform(d, 219, -1f, 1f);
        float[][] Run(bool bf16, out ushort[] dBranch16)
        {
            using var dDy = device.Upload(dy);
            using var dBranchIn = device.Upload(branch);
            using var mod = device.Upload(modulation);
            using var dMod = device.Upload(dModulation);
            using var dBranch = Floats(dy.Length);
            using var halves = Halves(dy.Length);
            using var bias = device.Upload(branchBias);
            using var dBias = device.Upload(dBias0);
            using var partials = Floats(KernelSet.BiasChunks(rows) * d);
            var gate = mod.View.SubView(2 * d, modulation.Length - 2 * d);
            var dGate = dMod.View.SubView(2 * d, modulation.Length - 2 * d);
            if (bf16)
                device.Kernels.GatedResidualBackwardBf16WithBiasGradient(dDy.View, dBranchIn.View, bias.View, gate, dGate, halves.View, partials.View, dBias.View,
                    d, rowsPerImage, modStride);
            else
            {
                device.Kernels.GatedResidualBackward(dDy.View, dBranchIn.View, bias.View, gate, dGate, dBranch.View, d, rowsPerImage, modStride);
                device.Kernels.RoundToBf16(dBranch.View, halves.View);
                device.Kernels.ColumnSumsByChunks(dBranch.View, partials.View, dBias.View, d);
            }
            dBranch16 = Download(halves);
            return [device.Download(dMod), device.Download(dBias)];
        }
        var expected = Run(bf16: false, out var expected16);
        var actual = Run(bf16: true, out var actual16);
        device.AssertSameBits(expected[0], actual[0]);
        device.AssertSameBits(expected[1], actual[1]);
        Assert.NotEqual(dModulation, expected[0]); // the gate gradient was added
        Assert.NotEqual(dBias0, expected[1]); // and the bias gradient
        AssertSameHalves(expected16, actual16, "dBranch16");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(130)]
    public void ColumnSumsByChunks_AddTheColumnSums(int rows)
    {
        // Against the row-order kernel: the same terms summed by chunks, 1e-5 of max(1, |sum|).
        const int cols = 9;
        var x = KernelData.Uniform(rows * cols, 220 + rows, -2f, 2f);
        var dst0 = KernelData.Uniform(cols, 221, -1f, 1f);
        using var dx = device.Upload(x);
        using var expected = device.Upload(dst0);
        using var actual = device.Upload(dst0);
        using var partials = Floats(KernelSet.BiasChunks(rows) * cols);
        device.Kernels.ColumnSums(dx.View, expected.View, cols);
        device.Kernels.ColumnSumsByChunks(dx.View, partials.View, actual.View, cols);
        float[] e = device.Download(expected), a = device.Download(actual);
        for (int j = 0; j < cols; j++)
            Assert.True(Math.Abs(e[j] - a[j]) <= 1e-5 * Math.Max(1, Math.Abs(e[j])), $"column {j}: expected {e[j]:R}, got {a[j]:R}");
        Assert.NotEqual(dst0, a);
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Floats(int length)
    {
        var buffer = device.Accelerator.Allocate1D<float>(length);
        buffer.MemSetToZero();
        return buffer;
    }

    private MemoryBuffer1D<ushort, Stride1D.Dense> Halves(int length)
    {
        var buffer = device.Accelerator.Allocate1D<ushort>(length);
        buffer.MemSetToZero();
        return buffer;
    }

    private ushort[] Download(MemoryBuffer1D<ushort, Stride1D.Dense> buffer)
    {
        device.Accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }

    /// <summary>The values rounded on the device by the rounding kernel the products' operands otherwise go through.</summary>
    private ushort[] Rounded(float[] values)
    {
        using var source = device.Upload(values);
        using var halves = Halves(values.Length);
        device.Kernels.RoundToBf16(source.View, halves.View);
        return Download(halves);
    }

    private void AssertSameHalves(ushort[] expected, ushort[] actual, string what)
    {
        Assert.Contains(expected, v => (v & 0x7FFF) != 0); // the comparison compares something
        device.AssertSameHalves(expected, actual, what);
    }
}

/// <summary>The same tests on a CPU accelerator shaped as a CUDA device: 32-lane warps, a GPU's launch shapes.</summary>
[Collection(CudaShapedAcceleratorCollection.Name)]
public sealed class Bf16OperandKernelsOnCudaWarpsTests(CudaShapedAcceleratorFixture device) : Bf16OperandKernelsTests(device);
