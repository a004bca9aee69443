using MediatorDiT.Models;
using MediatorDiT.Nn;
using MediatorDiT.Tensors;

namespace MediatorDiT.Tests.Nn;

/// <summary>
/// The fused attention row kernels and the register-tap depthwise conv against their plain twins, on
/// sizes with vector tails; and both attentions giving bit-identical results on one and two threads.
/// </summary>
public class FusedKernelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(256)]
    public void SoftmaxRowsMatchReference(int cols)
    {
        var x = TestData.Gaussian(cols, 21, 4f);
        var bias = TestData.Gaussian(cols, 22, 2f);
        x[cols / 2] = 500f; // exp would overflow without the max subtraction
        foreach (bool withBias in new[] { false, true })
        {
            var fast = (float[])x.Clone();
            var slow = (float[])x.Clone();
            var b = withBias ? bias : [];
            float lseFast = SoftmaxRows.Forward(fast, b);
            float lseSlow = ReferenceSoftmaxRows.Forward(slow, b);
            TestData.AssertClose(slow, fast, 1e-6f, $"softmax cols {cols} bias {withBias}");
            Assert.Equal(lseSlow, lseFast, 1e-4f * Math.Max(1f, Math.Abs(lseSlow)));

            // Recomputing the probabilities from the log-sum-exp gives them back.
            var logits = (float[])x.Clone();
            for (int i = 0; i < cols; i++) logits[i] += withBias ? bias[i] : 0;
            SoftmaxRows.ExpShifted(logits, lseFast);
            TestData.AssertClose(slow, logits, 1e-5f, "exp(logit - lse)");

            var dp = TestData.Gaussian(cols, 23);
            var dFast = (float[])dp.Clone();
            var dSlow = (float[])dp.Clone();
            SoftmaxRows.Backward(fast, dFast);
            ReferenceSoftmaxRows.Backward(slow, dSlow);
            TestData.AssertClose(dSlow, dFast, 1e-5f, "softmax backward");
            dFast = (float[])dp.Clone();
            dSlow = (float[])dp.Clone();
            SoftmaxRows.Backward(fast, dFast, 0.25f);
            ReferenceSoftmaxRows.Backward(slow, dSlow, 0.25f);
            TestData.AssertClose(dSlow, dFast, 1e-5f, "softmax backward with a given delta");
        }
    }

    [Theory]
    [InlineData(1, 1, 3, 3)]
    [InlineData(4, 5, 37, 37)]
    [InlineData(6, 3, 16, 48)]
    public void DepthwiseConvMatchesReference(int h, int w, int c, int stride)
    {
        var x = TestData.Gaussian((h * w - 1) * stride + c, 31);
        var taps = TestData.Gaussian(9 * c, 32);
        var bias = TestData.Gaussian(c, 33);
        foreach (bool accumulate in new[] { false, true })
        {
            var start = TestData.Gaussian(h * w * c, 34);
            var fast = (float[])start.Clone();
            var slow = (float[])start.Clone();
            DepthwiseConv3x3.Forward(x, stride, taps, bias, fast, h, w, c, accumulate);
            ReferenceDepthwiseConv3x3.Forward(x, stride, taps, bias, slow, h, w, c, accumulate);
            TestData.AssertClose(slow, fast, 1e-5f, $"dwc forward accumulate {accumulate}");
        }
        var g = TestData.Gaussian(h * w * c, 35);
        var dx0 = TestData.Gaussian(x.Length, 36);
        var (dxF, dtF, dbF) = ((float[])dx0.Clone(), new float[9 * c], new float[c]);
        var (dxS, dtS, dbS) = ((float[])dx0.Clone(), new float[9 * c], new float[c]);
        DepthwiseConv3x3.BackwardAccumulate(x, stride, taps, g, dxF, dtF, dbF, h, w, c);
        ReferenceDepthwiseConv3x3.BackwardAccumulate(x, stride, taps, g, dxS, dtS, dbS, h, w, c);
        TestData.AssertClose(dxS, dxF, 1e-5f, "dwc dx");
        TestData.AssertClose(dtS, dtF, 1e-5f, "dwc dtaps");
        TestData.AssertClose(dbS, dbF, 1e-5f, "dwc dbias");
    }

    [Fact]
    public void DepthwiseConvOnAChannelSliceMatchesTheWholeConv()
    {
        // One head's 8 channels (offset 16) of a 40-channel grid, read and written with the full strides.
        const int h = 5, w = 6, c = 40, off = 16, hc = 8;
        var x = TestData.Gaussian(h * w * c, 61);
        var taps = TestData.Gaussian(9 * c, 62);
        var bias = TestData.Gaussian(c, 63);
        var whole = TestData.Gaussian(h * w * c, 64);
        var slice = (float[])whole.Clone();
        ReferenceDepthwiseConv3x3.Forward(x, c, taps, bias, whole, h, w, c, accumulate: true);
        DepthwiseConv3x3.Forward(x.AsSpan(off), c, taps.AsSpan(off), c, bias.AsSpan(off, hc), slice.AsSpan(off), c, h, w, hc, accumulate: true);
        for (int p = 0; p < h * w; p++)
            TestData.AssertClose(whole.AsSpan(p * c + off, hc), slice.AsSpan(p * c + off, hc), 1e-5f, $"token {p}");

        var g = TestData.Gaussian(h * w * c, 65);
        var (dxW, dtW, dbW) = (new float[x.Length], new float[9 * c], new float[c]);
        var (dxS, dtS, dbS) = (new float[x.Length], new float[9 * c], new float[c]);
        ReferenceDepthwiseConv3x3.BackwardAccumulate(x, c, taps, g, dxW, dtW, dbW, h, w, c);
        DepthwiseConv3x3.BackwardAccumulate(x.AsSpan(off), c, taps.AsSpan(off), c, g.AsSpan(off), c, dxS.AsSpan(off), dtS.AsSpan(off),
            dbS.AsSpan(off, hc), h, w, hc);
        for (int p = 0; p < h * w; p++)
            TestData.AssertClose(dxW.AsSpan(p * c + off, hc), dxS.AsSpan(p * c + off, hc), 1e-5f, $"dx token {p}");
        for (int t = 0; t < 9; t++)
            TestData.AssertClose(dtW.AsSpan(t * c + off, hc), dtS.AsSpan(t * c + off, hc), 1e-5f, $"dtaps {t}");
        TestData.AssertClose(dbW.AsSpan(off, hc), dbS.AsSpan(off, hc), 1e-5f, "dbias");
        Assert.All(dbS.AsSpan(0, off).ToArray(), v => Assert.Equal(0f, v)); // other channels untouched
    }

    private static float[][] RunAttention(IAttention attn, int batch, int tokens, int dim, int threads)
    {
        var saved = ComputeContext.Raw;
        ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
        try
        {
            var rng = new RandomSource(41);
            foreach (var p in attn.Parameters)
            {
                rng.FillGaussian(p.Value.Span, 0, 0.3f);
                p.Grad!.Zero();
            }
            var x = new Tensor(batch * tokens, dim);
            rng.FillGaussian(x.Span);
            var g = new Tensor(batch * tokens, dim);
            rng.FillGaussian(g.Span);
            var y = new Tensor(batch * tokens, dim);
            attn.Forward(x, y, batch);
            var dx = new Tensor(batch * tokens, dim);
            attn.Backward(g, dx);
            return [y.Span.ToArray(), dx.Span.ToArray(), .. attn.Parameters.Select(p => p.Grad!.Span.ToArray())];
        }
        finally
        {
            ComputeContext.Raw = saved;
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(9)]
    public void AttentionIsIdenticalOnOneAndTwoThreads(int mediators)
    {
        // 3 images of a 7x7 grid, 40 channels in 5 heads: odd item counts for the batch x heads loops.
        const int batch = 3, grid = 7, dim = 40, heads = 5;
        IAttention Make() => mediators == 0 ? new FullAttention("a.", dim, heads) : new MediatorAttention("a.", dim, heads, grid, mediators);
        var one = RunAttention(Make(), batch, grid * grid, dim, 1);
        var two = RunAttention(Make(), batch, grid * grid, dim, 2);
        for (int i = 0; i < one.Length; i++)
            Assert.True(one[i].AsSpan().SequenceEqual(two[i]), $"output {i} differs between 1 and 2 threads");
    }

    [Fact]
    public void ParallelLoopVisitsEveryItemOnceAtAnyLength()
    {
        var saved = ComputeContext.Raw;
        ComputeContext.Raw = ComputeContext.Default with { Threads = 2 };
        try
        {
            foreach (int count in new[] { 0, 1, 3, 32, 33, 1000 })
            {
                var hits = new int[count];
                ParallelLoop.For(count, i => Interlocked.Increment(ref hits[i]));
                Assert.All(hits, h => Assert.Equal(1, h));
            }
        }
        finally
        {
            ComputeContext.Raw = saved;
        }
    }
}

/// <summary>The fused LayerNorm + adaLN modulation rows against the plain LayerNorm and a scalar modulation.</summary>
public class AdaLayerNormTests
{
    [Theory]
    [InlineData(1, 7, 20)]
    [InlineData(3, 5, 40)]
    [InlineData(2, 33, 384)]
    public void FusedRowsMatchPlainLayerNormAndModulation(int batch, int tokens, int dim)
    {
        int rows = batch * tokens;
        var x = TestData.Gaussian(rows * dim, 51, 3f);
        for (int i = 0; i < dim; i++) x[i] += 50f; // a large mean must not cost precision
        var mod = TestData.Gaussian(batch * 3 * dim, 52);
        var norm = new AdaLayerNorm(dim);
        var y = new Tensor(rows, dim);
        var saved = ComputeContext.Raw;
        ComputeContext.Raw = ComputeContext.Default with { Threads = 2 };
        try
        {
            norm.Forward(new Tensor(x, rows, dim), new Tensor(mod, batch, 3 * dim), dim, 2 * dim, y, batch);
        }
        finally
        {
            ComputeContext.Raw = saved;
        }
        var xhat = new float[x.Length];
        ReferenceLayerNorm.Forward(x, xhat, new float[rows], new float[rows], rows, dim);
        var expected = new float[x.Length];
        for (int r = 0; r < rows; r++)
        for (int j = 0; j < dim; j++)
        {
            int b = r / tokens;
            double shift = mod[b * 3 * dim + dim + j], scale = mod[b * 3 * dim + 2 * dim + j];
            expected[r * dim + j] = (float)(xhat[r * dim + j] * (1 + scale) + shift);
        }
        TestData.AssertClose(expected, y.Span, 1e-5f, "modulated layernorm");
        TestData.AssertClose(xhat, norm.Normalized.Span, 1e-5f, "xhat");
    }

    [Fact]
    public void RowBlocksCoverEveryRowOnceWithBoundedSizesWhateverTheThreadCount()
    {
        var saved = ComputeContext.Raw;
        try
        {
            foreach (int rows in new[] { 1, 31, 256, 1000, 2048, 4096 * 2 })
            {
                ComputeContext.Raw = ComputeContext.Default with { Threads = 1 };
                var blocks = RowBlocks.For(rows).ToArray();
                Assert.Equal(0, blocks[0].Start);
                Assert.Equal(rows, blocks[^1].End);
                for (int i = 0; i < blocks.Length; i++)
                {
                    if (i > 0) Assert.Equal(blocks[i - 1].End, blocks[i].Start);
                    Assert.InRange(blocks[i].End - blocks[i].Start, 1, RowBlocks.MaxRows);
                }
                // The blocks are GEMM shapes: the same on any thread count (OpenBLAS's sums depend on them).
                foreach (int threads in new[] { 2, 16 })
                {
                    ComputeContext.Raw = ComputeContext.Default with { Threads = threads };
                    Assert.Equal(blocks, RowBlocks.For(rows).ToArray());
                }
            }
        }
        finally { ComputeContext.Raw = saved; }
    }
}
